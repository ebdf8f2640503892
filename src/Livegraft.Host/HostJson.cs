using System.Text.Json;

namespace Livegraft.Host;

/// <summary>
/// The <c>--json</c> documents of the host commands, written with <see cref="Utf8JsonWriter"/> (AOT-safe).
/// Field names are camelCase and stable: scripts depend on them (docs/host.md lists them).
/// </summary>
public static class HostJson
{
    /// <summary><c>load</c>.</summary>
    public static void Write(Utf8JsonWriter w, LoadResult r)
    {
        w.WriteStartObject();
        w.WriteBoolean("ok", r.ExitCode == ExitCode.Success);
        w.WriteNumber("exitCode", (int)r.ExitCode);
        w.WriteString("name", r.Name);
        w.WriteString("file", r.File);
        w.WriteString("sha256", r.Sha256);
        w.WriteString("outcome", Json.Kebab(r.Outcome.ToString()));
        w.WriteNumber("elapsedSeconds", Math.Round(r.Elapsed.TotalSeconds, 3));
        w.WriteBoolean("signalled", r.Signalled);
        WriteBlockers(w, r.Blockers);
        Json.WriteStrings(w, "replaced", r.Replaced);
        Json.WriteDiagnostics(w, r.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>unload</c> (one or <c>--all</c>).</summary>
    public static void Write(Utf8JsonWriter w, IReadOnlyList<UnloadResult> results)
    {
        w.WriteStartObject();
        var ok = results.All(r => r.Unloaded);
        w.WriteBoolean("ok", ok);
        w.WriteNumber("exitCode", ok ? 0 : (int)ExitCode.HostFailure);
        w.WriteStartArray("patches");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("name", r.Name);
            w.WriteBoolean("unloaded", r.Unloaded);
            w.WriteNumber("elapsedSeconds", Math.Round(r.Elapsed.TotalSeconds, 3));
            WriteBlockers(w, r.Blockers);
            Json.WriteDiagnostics(w, r.Diagnostics);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary><c>list</c>: loaded patches in stack order and installed ones.</summary>
    public static void WriteList(Utf8JsonWriter w, IReadOnlyList<LoadedPatch> loaded, IReadOnlyList<InstalledPatch> installed, string? runningRelease,
        IReadOnlyList<BootPlanEntry>? atBoot = null)
    {
        w.WriteStartObject();
        WritePatches(w, loaded);
        WriteInstalled(w, installed, runningRelease, atBoot);
        w.WriteEndObject();
    }

    /// <summary><c>status</c>.</summary>
    public static void Write(Utf8JsonWriter w, HostStatus s)
    {
        w.WriteStartObject();
        w.WriteString("verdict", Json.Kebab(s.Verdict.ToString()));
        w.WriteStartObject("kernel");
        w.WriteString("release", s.Kernel.Release);
        if (s.Kernel.BuildId is null)
            w.WriteNull("buildId");
        else
            w.WriteString("buildId", s.Kernel.BuildId);
        w.WriteBoolean("livepatchSupported", s.LivepatchSupported);
        w.WriteNumber("tainted", s.Kernel.Tainted);
        w.WriteString("taintLetters", s.Kernel.TaintLetters);
        w.WriteStartArray("taintFlags");
        foreach (var f in TaintFlag.Decode(s.Kernel.Tainted))
        {
            w.WriteStartObject();
            w.WriteNumber("bit", f.Bit);
            w.WriteString("letter", f.Letter.ToString());
            w.WriteString("name", f.Name);
            w.WriteString("description", f.Description);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteNullable(w, "bootId", s.BootId);
        w.WriteEndObject();
        w.WriteString("effectiveVersion", s.EffectiveVersion);
        if (s.TransitionPatch is null)
            w.WriteNull("transitionPatch");
        else
            w.WriteString("transitionPatch", s.TransitionPatch);
        WritePatches(w, s.Patches, p => s.Updates.Find(p, s.Kernel.Release));
        WriteBlockers(w, s.Blockers);
        Kexec.KexecJson.WriteBootSafety(w, s.BootSafety);
        if (s.Kexec is not null)
            Kexec.KexecJson.WriteState(w, s.Kexec);
        Repository.FleetJson.WriteStatusFields(w, s);
        Json.WriteDiagnostics(w, s.Diagnostics);
        w.WriteEndObject();
    }

    /// <summary><c>info</c>: what a module file records.</summary>
    public static void Write(Utf8JsonWriter w, KernelModuleFile ko)
    {
        w.WriteStartObject();
        w.WriteString("file", ko.Path);
        w.WriteString("name", ko.Name);
        w.WriteString("sha256", ko.Sha256);
        w.WriteNumber("size", ko.Size);
        w.WriteBoolean("kernelModule", ko.HasThisModule);
        w.WriteBoolean("livepatch", ko.IsLivepatch);
        Json.WriteNullable(w, "vermagic", ko.Vermagic);
        Json.WriteNullable(w, "kernelRelease", ko.KernelRelease);
        if (ko.Replace is { } replace)
            w.WriteBoolean("replace", replace);
        else
            w.WriteNull("replace");
        w.WriteStartObject("livegraft");
        foreach (var kv in ko.LivegraftEntries)
            w.WriteString(Json.CamelCase(kv.Key), kv.Value);
        w.WriteEndObject();
        w.WriteStartArray("modinfo");
        foreach (var kv in ko.ModInfo)
        {
            w.WriteStartObject();
            w.WriteString("key", kv.Key);
            w.WriteString("value", kv.Value);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Json.WriteStrings(w, "objects", ko.KlpObjects);
        w.WriteNumber("klpRelocationCount", ko.KlpRelocations.Sum(r => r.Count));
        w.WriteStartArray("klpRelocations");
        foreach (var r in ko.KlpRelocations)
        {
            w.WriteStartObject();
            w.WriteString("section", r.Section);
            w.WriteString("object", r.Object);
            w.WriteString("targetSection", r.TargetSection);
            w.WriteNumber("count", r.Count);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("klpSymbols");
        foreach (var s in ko.KlpSymbols)
        {
            w.WriteStartObject();
            w.WriteString("object", s.Object);
            w.WriteString("symbol", s.Symbol);
            w.WriteNumber("sympos", s.Sympos);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary><c>install</c> / <c>uninstall</c>.</summary>
    public static void Write(Utf8JsonWriter w, string action, IReadOnlyList<InstalledPatch> patches, string? unitPath)
    {
        w.WriteStartObject();
        w.WriteBoolean("ok", true);
        w.WriteString("action", action);
        WriteInstalled(w, patches, null);
        Json.WriteNullable(w, "unit", unitPath);
        w.WriteEndObject();
    }

    /// <summary><c>load-installed</c>.</summary>
    public static void Write(Utf8JsonWriter w, string release, IReadOnlyList<BootLoadResult> results)
    {
        w.WriteStartObject();
        Json.WriteOutcome(w, BootLoadResult.ExitCodeOf(results));
        w.WriteString("release", release);
        w.WriteStartArray("patches");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("name", r.Patch.Name);
            w.WriteString("file", r.Patch.Path);
            w.WriteString("action", Json.Kebab(r.Action.ToString()));
            if (r.Load is not null)
                w.WriteString("outcome", Json.Kebab(r.Load.Outcome.ToString()));
            Json.WriteDiagnostics(w, r.Diagnostics);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WritePatches(Utf8JsonWriter w, IReadOnlyList<LoadedPatch> patches, Func<string, Repository.KnownPatch?>? origin = null)
    {
        w.WriteStartArray("patches");
        foreach (var p in patches)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteBoolean("registered", p.Registered);
            w.WriteBoolean("enabled", p.Enabled);
            w.WriteBoolean("transition", p.Transition);
            if (p.Replace is { } replace)
                w.WriteBoolean("replace", replace);
            else
                w.WriteNull("replace");
            w.WriteString("taint", p.Taint);
            w.WriteStartArray("objects");
            foreach (var o in p.Objects)
            {
                w.WriteStartObject();
                w.WriteString("name", o.Name);
                w.WriteBoolean("patched", o.Patched);
                w.WriteString("state", o.State);
                if (o.Reason is { } reason)
                    w.WriteString("reason", reason);
                w.WriteStartArray("functions");
                foreach (var f in o.Functions)
                {
                    w.WriteStartObject();
                    w.WriteString("name", f.Name);
                    w.WriteNumber("sympos", f.Sympos);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (origin is not null)
                Repository.FleetJson.WriteOrigin(w, origin(p.Name));
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteInstalled(Utf8JsonWriter w, IReadOnlyList<InstalledPatch> installed, string? runningRelease, IReadOnlyList<BootPlanEntry>? atBoot = null)
    {
        w.WriteStartArray("installed");
        foreach (var p in installed)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteString("release", p.Release);
            w.WriteNumber("sequence", p.Sequence);
            w.WriteString("file", p.Path);
            w.WriteString("sha256", p.Sha256);
            if (runningRelease is not null)
                w.WriteBoolean("forRunningKernel", p.Release == runningRelease);
            if (atBoot?.FirstOrDefault(e => e.Patch == p) is { } plan)
            {
                w.WriteString("atBoot", plan.AtBoot);
                Json.WriteNullable(w, "supersededBy", plan.SupersededBy);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteBlockers(Utf8JsonWriter w, IReadOnlyList<BlockingTask> blockers)
    {
        w.WriteStartArray("blockers");
        foreach (var b in blockers)
        {
            w.WriteStartObject();
            w.WriteNumber("pid", b.Pid);
            w.WriteNumber("tid", b.Tid);
            w.WriteString("comm", b.Comm);
            w.WriteNumber("patchState", b.PatchState);
            Json.WriteNullable(w, "function", b.Function);
            Json.WriteStrings(w, "stack", b.Stack);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }




}
