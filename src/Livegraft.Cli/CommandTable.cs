using System.CommandLine;

namespace Livegraft.Cli.Commands;

/// <summary>Every verb of <c>livegraft</c>; each lives in its own file under Commands/.</summary>
internal static class CommandTable
{
    /// <summary>The subcommands, in the order <c>--help</c> lists them.</summary>
    public static IEnumerable<Command> All() =>
    [
        BuildCommand.Create(),
        TryCommand.Create(),
        DiffCommand.Create(),
        ElfCommand.Create(),
        LoadCommand.Create(),
        UnloadCommand.Create(),
        ListCommand.Create(),
        StatusCommand.Create(),
        InfoCommand.Create(),
        InstallCommand.Create(),
        InstallCommand.CreateUninstall(),
        InstallCommand.CreateLoadInstalled(),
        ConfirmBootCommand.Create(),
        RebootCommand.Create(),
        UpdateCommand.Create(),
        UpdateCommand.CreateRollback(),
        UpdateCommand.CreateHealth(),
        RepoCommand.Create(),
        SymbolsCommand.Create(),
        TargetCommand.Create(),
        VerifyCommand.Create(),
        VmCommand.Create(),
    ];
}
