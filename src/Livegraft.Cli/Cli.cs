using System.CommandLine;
using System.Text;
using System.Text.Json;

namespace Livegraft.Cli;

/// <summary>Shared plumbing for commands: options every verb has, error rendering, JSON output.</summary>
internal static class Cli
{
    /// <summary><c>--json</c>: print exactly one JSON document on stdout.</summary>
    public static Option<bool> JsonOption() => new("--json") { Description = "Print one JSON document on stdout instead of text." };

    /// <summary><c>-v</c>: more detail on stderr.</summary>
    public static Option<bool> VerboseOption() => new("--verbose", "-v") { Description = "Show more detail on stderr." };

    /// <summary>Parses and invokes; maps <see cref="LivegraftException"/> to its exit code.</summary>
    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                Console.Error.WriteLine($"livegraft: {error.Message}");
            Console.Error.WriteLine("livegraft: see 'livegraft --help'");
            return (int)ExitCode.Usage;
        }
        try
        {
            return parse.Invoke();
        }
        catch (LivegraftException e)
        {
            foreach (var d in e.Diagnostics)
                Console.Error.WriteLine(d.ToString());
            return (int)e.ExitCode;
        }
    }

    /// <summary>Wraps a command body: catches <see cref="LivegraftException"/>, renders diagnostics
    /// (as a JSON error document when <paramref name="json"/>), returns the exit code.</summary>
    public static int Guard(bool json, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (LivegraftException e)
        {
            foreach (var d in e.Diagnostics)
                Console.Error.WriteLine(d.ToString());
            if (json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("ok", false);
                    w.WriteNumber("exitCode", (int)e.ExitCode);
                    w.WriteStartArray("diagnostics");
                    foreach (var d in e.Diagnostics)
                        d.WriteJson(w);
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            }
            return (int)e.ExitCode;
        }
    }

    /// <summary>Writes one indented JSON document to stdout (AOT-safe: no reflection).</summary>
    public static void WriteJson(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            write(w);
        Console.Out.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

    /// <summary>True when stderr is a terminal and colour or live progress may be used.</summary>
    public static bool StderrIsTerminal =>
        !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
}
