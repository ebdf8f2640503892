using System.CommandLine;
using Livegraft.Cli;
using Livegraft.Cli.Commands;

var root = new RootCommand("Livegraft: build, verify and apply Linux kernel live patches.");
foreach (var command in CommandTable.All())
    root.Subcommands.Add(command);
return Cli.Run(root, args);
