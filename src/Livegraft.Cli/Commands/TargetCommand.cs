using System.CommandLine;
using Livegraft.Kernel;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft target RELEASE [--prepare] [--json]</c>: how a release resolves to Debian
/// packages, and (prepared) what the kernel is like.</summary>
internal static class TargetCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var release = new Argument<string>("RELEASE") { Description = "Kernel release as uname -r prints it, e.g. 6.1.0-53-amd64 or 6.12.117+deb12-cloud-amd64." };
        var prepare = new Option<bool>("--prepare") { Description = "Also fetch the packages into the cache, prepare the tree and read the kernel's features." };
        var json = Cli.JsonOption();
        var command = new Command("target", "Show the Debian packages a kernel release is made of and, prepared, its features.") { release, prepare, json };
        command.SetAction(parse => Cli.Guard(parse.GetValue(json), () =>
        {
            var progress = Progress.ForStderr();
            var description = TargetDescription.Describe(parse.GetValue(release)!, parse.GetValue(prepare), progress.Report);
            progress.Done();
            if (parse.GetValue(json))
                Cli.WriteJson(description.WriteJson);
            else
                foreach (var line in description.TextLines())
                    Console.WriteLine(line);
            return 0;
        }));
        return command;
    }
}
