namespace Livegraft;

/// <summary>Process exit codes shared by every command (see STYLE.md, CLI).</summary>
public enum ExitCode
{
    /// <summary>The command did what it was asked.</summary>
    Success = 0,
    /// <summary>The command line was wrong.</summary>
    Usage = 1,
    /// <summary>Invalid input, or a change Livegraft refuses to carry.</summary>
    InvalidInput = 2,
    /// <summary>The host or the environment failed (missing tool, kernel refused, timeout).</summary>
    HostFailure = 3,
    /// <summary>The target is not what the patch was built for.</summary>
    VerificationFailed = 4,
}

/// <summary>How bad a diagnostic is.</summary>
public enum Severity
{
    /// <summary>Worth knowing.</summary>
    Note,
    /// <summary>Suspicious but not fatal.</summary>
    Warning,
    /// <summary>Stops the operation.</summary>
    Error,
}

/// <summary>A message with a stable id and a location, printed like a compiler's.</summary>
/// <param name="Id">Stable identifier such as <c>LG0107</c>; tests assert on it.</param>
/// <param name="Severity">How bad it is.</param>
/// <param name="Message">Human text.</param>
/// <param name="File">File the problem is in, if any.</param>
/// <param name="Location">Section, symbol or offset inside the file, e.g. <c>.text.foo+0x1a</c>.</param>
public sealed record Diagnostic(string Id, Severity Severity, string Message, string? File = null, string? Location = null)
{
    /// <summary>Formats as <c>file: location: error LG0107: message</c>.</summary>
    public override string ToString()
    {
        var where = File is null ? "" : File + ": ";
        if (Location is not null)
            where += Location + ": ";
        var sev = Severity switch { Severity.Error => "error", Severity.Warning => "warning", _ => "note" };
        return $"{where}{sev} {Id}: {Message}";
    }

    /// <summary>Writes the diagnostic as one JSON object (<c>id</c>, <c>severity</c>, <c>message</c>,
    /// and <c>file</c>, <c>location</c> when known): the shape every <c>--json</c> document uses.</summary>
    public void WriteJson(System.Text.Json.Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("severity", Severity.ToString().ToLowerInvariant());
        w.WriteString("message", Message);
        if (File is not null)
            w.WriteString("file", File);
        if (Location is not null)
            w.WriteString("location", Location);
        w.WriteEndObject();
    }
}

/// <summary>The one exception type Livegraft libraries throw for expected failures.</summary>
public class LivegraftException : Exception
{
    /// <summary>Creates the exception from one or more diagnostics.</summary>
    public LivegraftException(ExitCode exitCode, params Diagnostic[] diagnostics)
        : base(string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString())))
    {
        ExitCode = exitCode;
        Diagnostics = diagnostics;
    }

    /// <summary>Creates the exception from one message.</summary>
    public LivegraftException(ExitCode exitCode, string id, string message, string? file = null, string? location = null)
        : this(exitCode, new Diagnostic(id, Severity.Error, message, file, location))
    {
    }

    /// <summary>The exit code a command should end with.</summary>
    public ExitCode ExitCode { get; }

    /// <summary>What went wrong.</summary>
    public IReadOnlyList<Diagnostic> Diagnostics { get; }
}
