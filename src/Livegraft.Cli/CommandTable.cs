using System.CommandLine;

namespace Livegraft.Cli.Commands;

/// <summary>Every verb of <c>livegraft</c>; each lives in its own file under Commands/.</summary>
internal static class CommandTable
{
    /// <summary>The subcommands, in the order <c>--help</c> lists them.</summary>
    public static IEnumerable<Command> All() =>
    [
    ];
}
