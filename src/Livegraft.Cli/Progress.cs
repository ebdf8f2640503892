namespace Livegraft.Cli;

/// <summary>Progress on stderr: one rewritten status line on a terminal, plain lines otherwise.</summary>
internal sealed class Progress
{
    private readonly bool _terminal;
    private int _width;

    private Progress(bool terminal) => _terminal = terminal;

    /// <summary>Progress for the current stderr.</summary>
    public static Progress ForStderr() => new(Cli.StderrIsTerminal);

    /// <summary>Shows one step.</summary>
    public void Report(string message)
    {
        if (!_terminal)
        {
            Console.Error.WriteLine("livegraft: " + message);
            return;
        }
        var line = "livegraft: " + message;
        var max = Math.Max(20, (Console.IsErrorRedirected ? 120 : SafeWidth()) - 1);
        if (line.Length > max)
            line = line[..max];
        Console.Error.Write("\r" + line.PadRight(_width));
        _width = line.Length;
    }

    /// <summary>Ends the status line.</summary>
    public void Done()
    {
        if (_terminal && _width > 0)
            Console.Error.Write("\r" + new string(' ', _width) + "\r");
        _width = 0;
    }

    private static int SafeWidth()
    {
        try
        {
            return Console.WindowWidth;
        }
        catch (IOException)
        {
            return 120;
        }
    }
}
