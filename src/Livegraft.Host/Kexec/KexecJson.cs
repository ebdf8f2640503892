using System.Text.Json;

namespace Livegraft.Host.Kexec;

/// <summary>The <c>--json</c> documents of <c>reboot --kexec</c> and <c>confirm-boot</c>, and the
/// <c>kexec</c> and <c>bootSafety</c> sections of <c>status</c> (docs/kexec.md lists the fields).</summary>
public static class KexecJson
{
    /// <summary><c>reboot --kexec</c>: printed before the machine goes down.</summary>
    public static void Write(Utf8JsonWriter w, KexecResult r)
    {
        var p = r.Plan;
        w.WriteStartObject();
        Json.WriteOutcome(w, ExitCode.Success);
        w.WriteBoolean("dryRun", r.DryRun);
        w.WriteBoolean("loaded", r.Loaded);
        w.WriteBoolean("rebooting", r.Rebooting);
        w.WriteNumber("loadSeconds", Math.Round(r.LoadTime.TotalSeconds, 3));
        w.WriteString("method", Json.Kebab(p.Method.ToString()));
        w.WriteStartObject("running");
        w.WriteString("release", p.Running.Release);
        w.WriteString("flavour", p.Flavour);
        Json.WriteNullable(w, "bootId", p.BootId);
        w.WriteEndObject();
        w.WriteStartObject("kernel");
        w.WriteString("release", p.Image.Release);
        w.WriteString("flavour", KernelRelease.Flavour(p.Image.Release));
        w.WriteString("image", p.Image.Path);
        w.WriteString("version", p.Image.Version);
        w.WriteString("bootProtocol", p.Image.Protocol);
        w.WriteNumber("size", p.Image.Size);
        w.WriteEndObject();
        if (p.Initrd is null)
            w.WriteNull("initrd");
        else
        {
            w.WriteStartObject("initrd");
            w.WriteString("file", p.Initrd);
            w.WriteNumber("size", new FileInfo(p.Initrd).Length);
            w.WriteEndObject();
        }
        w.WriteString("commandLine", p.CommandLine);
        w.WriteString("commandLineSource", Json.Kebab(p.Source.ToString()));
        Json.WriteDiagnostics(w, p.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>confirm-boot</c>.</summary>
    public static void Write(Utf8JsonWriter w, BootConfirmation c)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, c.ExitCode);
        w.WriteBoolean("healthy", c.Healthy);
        WriteMarkers(w, "confirmed", c.Confirmed);
        WriteMarkers(w, "waiting", c.Waiting);
        WriteQuarantined(w, c.Quarantined);
        Json.WriteDiagnostics(w, c.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>status</c>'s <c>bootSafety</c>: <c>pending[]</c> markers of this boot, <c>quarantined[]</c>.</summary>
    public static void WriteBootSafety(Utf8JsonWriter w, BootSafetyReport r)
    {
        w.WriteStartObject("bootSafety");
        WriteMarkers(w, "pending", r.Pending);
        WriteQuarantined(w, r.Quarantined);
        w.WriteEndObject();
    }

    /// <summary><c>status</c>'s <c>kexec</c>: what the kernel allows and the last kexec reboot.</summary>
    public static void WriteState(Utf8JsonWriter w, KexecState s)
    {
        w.WriteStartObject("kexec");
        w.WriteBoolean("supported", s.Supported);
        w.WriteBoolean("loaded", s.Loaded);
        if (s.LoadDisabled is { } disabled)
            w.WriteBoolean("loadDisabled", disabled);
        else
            w.WriteNull("loadDisabled");
        Json.WriteNullable(w, "lockdown", s.Lockdown);
        if (s.LastReboot is not { } last)
            w.WriteNull("lastReboot");
        else
        {
            w.WriteStartObject("lastReboot");
            w.WriteString("fromRelease", last.FromRelease);
            w.WriteString("toRelease", last.ToRelease);
            w.WriteString("image", last.Image);
            w.WriteString("requestedAt", last.RequestedAt);
            w.WriteString("fromBootId", last.FromBootId);
            w.WriteBoolean("rebooted", last.Rebooted);
            w.WriteBoolean("arrived", last.Arrived);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteMarkers(Utf8JsonWriter w, string name, IReadOnlyList<BootMarker> markers)
    {
        w.WriteStartArray(name);
        foreach (var m in markers)
        {
            w.WriteStartObject();
            w.WriteString("name", m.Name);
            w.WriteString("release", m.Release);
            w.WriteString("state", m.State);
            w.WriteString("file", m.File);
            w.WriteString("sha256", m.Sha256);
            w.WriteString("since", m.Since);
            w.WriteNumber("healthyAfterSeconds", m.HealthyAfter.TotalSeconds);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteQuarantined(Utf8JsonWriter w, IReadOnlyList<QuarantinedPatch> quarantined)
    {
        w.WriteStartArray("quarantined");
        foreach (var q in quarantined)
        {
            w.WriteStartObject();
            w.WriteString("name", q.Name);
            w.WriteString("release", q.Release);
            w.WriteString("file", q.File);
            w.WriteString("sha256", q.Sha256);
            w.WriteString("reason", q.Reason);
            w.WriteString("bootId", q.BootId);
            w.WriteString("since", q.Since);
            w.WriteBoolean("settled", q.Settled);
            w.WriteString("retry", q.Retry);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
