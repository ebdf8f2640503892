using System.CommandLine;
using Livegraft.Host.Repository;
using Livegraft.Kernel.Build;

namespace Livegraft.Cli.Commands;

/// <summary><c>livegraft repo keygen|init|add|list</c>: the build side of a signed patch repository (docs/fleet.md).</summary>
internal static class RepoCommand
{
    /// <summary>Builds the command and its subcommands.</summary>
    public static Command Create()
    {
        var repo = new Command("repo", "Build and inspect a signed patch repository (a directory any static web server can serve).");
        repo.Subcommands.Add(Keygen());
        repo.Subcommands.Add(Init());
        repo.Subcommands.Add(Add());
        repo.Subcommands.Add(List());
        return repo;
    }

    private static Command Keygen()
    {
        var output = new Option<string>("--output", "-o") { Description = "Key file stem: writes STEM.key (private, mode 0600) and STEM.pem (public).", Required = true };
        var json = Cli.JsonOption();
        var command = new Command("keygen", "Generate an ECDSA P-256 signing key pair.");
        command.Options.Add(output);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var (priv, pub, id) = PatchRepository.GenerateKey(parse.GetValue(output)!);
                if (asJson)
                    Cli.WriteJson(w => FleetJson.WriteKey(w, priv, pub, id));
                else
                    Console.Out.WriteLine($"key {id}: private {priv} (keep it on the build machine), public {pub} (copy it to /etc/livegraft/keys/ on every host)");
                return 0;
            });
        });
        return command;
    }

    private static Command Init()
    {
        var dir = new Argument<string>("directory") { Description = "New repository directory (must be missing or empty)." };
        var key = KeyOption();
        var title = new Option<string?>("--title") { Description = "Human name of the repository (default: the directory name)." };
        var json = Cli.JsonOption();
        var command = new Command("init", "Create an empty patch repository signed with a key.");
        command.Arguments.Add(dir);
        command.Options.Add(key);
        command.Options.Add(title);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var directory = parse.GetValue(dir)!;
                var index = PatchRepository.Init(directory, parse.GetValue(key)!, parse.GetValue(title));
                if (asJson)
                    Cli.WriteJson(w => FleetJson.Write(w, "init", directory, index, null));
                else
                    Console.Out.WriteLine($"created repository {index.Repository} in {directory} (serial {index.Serial}); hosts trust it through {Path.Combine(directory, PatchRepository.PublicKeyFile)}");
                return 0;
            });
        });
        return command;
    }

    private static Command Add()
    {
        var dir = new Argument<string>("directory") { Description = "The repository." };
        var module = new Argument<string>("patch") { Description = "Livepatch module (.ko) to publish." };
        var key = KeyOption();
        var version = new Option<int?>("--version") { Description = "Version for its kernel (default: newest + 1)." };
        var cves = new Option<string[]>("--cve") { Description = "CVE id the patch fixes; repeatable." };
        var notes = new Option<string[]>("--note") { Description = "Note on what it fixes; repeatable." };
        var functions = new Option<string[]>("--function") { Description = "Function it fixes (default: the functions its verification table replaces); repeatable." };
        var buildId = new Option<string?>("--kernel-build-id") { Description = "GNU build id of the target kernel (default: recorded in the module, else read from the release's image)." };
        var stacking = new Option<bool>("--stacking") { Description = "Publish a patch built with --no-replace that does not record it: it stacks on the previous version instead of replacing it." };
        var json = Cli.JsonOption();
        var command = new Command("add", "Publish a live patch: copy and sign it, add it to the index, re-sign the index.");
        command.Arguments.Add(dir);
        command.Arguments.Add(module);
        foreach (var o in new Option[] { key, version, cves, notes, functions, buildId, stacking, json })
            command.Options.Add(o);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var directory = parse.GetValue(dir)!;
                var given = parse.GetValue(functions) ?? [];
                var entry = PatchRepository.Add(directory, new PublishRequest(parse.GetValue(module)!, parse.GetValue(key)!)
                {
                    Version = parse.GetValue(version),
                    Cves = parse.GetValue(cves) ?? [],
                    Notes = parse.GetValue(notes) ?? [],
                    Functions = given.Length > 0 ? given : null,
                    KernelBuildId = parse.GetValue(buildId),
                    Cumulative = parse.GetValue(stacking) ? false : null,
                    KernelBuildIdOf = PublishFacts.KernelBuildId,
                    PatchedFunctionsOf = PublishFacts.PatchedFunctions,
                    Progress = line => Console.Error.WriteLine("livegraft: " + line),
                });
                if (asJson)
                    Cli.WriteJson(w => FleetJson.Write(w, "add", directory, null, entry));
                else
                    Console.Out.WriteLine($"{entry.Name}: version {entry.Version} for {entry.KernelRelease} ({entry.File})" +
                        (entry.Fixes.Functions.Count > 0 ? $"; fixes {string.Join(", ", entry.Fixes.Functions)}" : "") +
                        (entry.Fixes.Cves.Count > 0 ? $"; {string.Join(", ", entry.Fixes.Cves)}" : ""));
                return 0;
            });
        });
        return command;
    }

    private static Command List()
    {
        var location = new Argument<string>("repository") { Description = "Repository directory or http(s) URL." };
        var json = Cli.JsonOption();
        var command = new Command("list", "Show a repository's patches and check its index signature against its own key.pem.");
        command.Arguments.Add(location);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            return Cli.Guard(asJson, () =>
            {
                var l = PatchRepository.List(parse.GetValue(location)!);
                foreach (var d in l.Diagnostics)
                    Console.Error.WriteLine(d.ToString());
                if (asJson)
                    Cli.WriteJson(w => FleetJson.Write(w, l));
                else
                {
                    Console.Out.WriteLine($"{l.Index.Title} ({l.Index.Repository}), serial {l.Index.Serial}, generated {PatchIndex.Time(l.Index.Generated)}, " +
                        (l.SignatureValid ? $"signed by {l.SignedBy}" : "SIGNATURE NOT VALID"));
                    foreach (var p in l.Index.Patches)
                        Console.Out.WriteLine($"  {p.KernelRelease} {p.KernelBuildId[..12]} v{p.Version} {p.Name}{(p.Cumulative ? "" : " (stacking)")} " +
                            $"{PatchIndex.Time(p.Published)} {string.Join(' ', p.Fixes.Cves.Concat(p.Fixes.Functions))}");
                }
                return l.SignatureValid ? 0 : (int)ExitCode.VerificationFailed;
            });
        });
        return command;
    }

    private static Option<string> KeyOption() =>
        new("--key") { Description = "The repository's private signing key (PEM, from 'repo keygen').", Required = true };
}
