namespace Livegraft.Host;

/// <summary>A task that has not switched to the target patch state of a transition.</summary>
/// <param name="Pid">Thread group id (the process).</param>
/// <param name="Tid">Thread id; equals <see cref="Pid"/> for a main thread.</param>
/// <param name="Comm">The task's <c>comm</c>.</param>
/// <param name="PatchState">Its <c>/proc/&lt;pid&gt;/patch_state</c>: 0 unpatched, 1 patched.</param>
/// <param name="Function">A function of the patch found on its kernel stack, which is usually why it cannot
/// switch (transition.c klp_check_stack), or null when none was seen or the stack was unreadable.</param>
/// <param name="Stack">The first frames of <c>/proc/&lt;pid&gt;/stack</c>, when readable.</param>
public sealed record BlockingTask(int Pid, int Tid, string Comm, int PatchState, string? Function, IReadOnlyList<string> Stack)
{
    /// <summary>One line for humans: <c>1234 cat (in fixture_block)</c>.</summary>
    public override string ToString() =>
        $"{Tid}{(Tid != Pid ? $" (thread of {Pid})" : "")} {Comm}" + (Function is null ? "" : $" in {Function}");
}

/// <summary>Walks <c>/proc</c> for tasks whose patch state is not the transition's target.</summary>
public sealed class TaskScanner
{
    private readonly HostPaths _paths;

    /// <summary>Scanner over the given procfs root.</summary>
    public TaskScanner(HostPaths paths) => _paths = paths;

    /// <summary>
    /// Tasks still in the other state than <paramref name="targetState"/> (1 when patching, 0 when
    /// unpatching). Tasks at -1 (KLP_UNDEFINED) are outside any transition and are skipped.
    /// <paramref name="functions"/> (the old functions) and frames of <paramref name="patchModule"/> (the
    /// new ones, which block an unpatching transition) are looked for on each blocker's stack.
    /// </summary>
    public IReadOnlyList<BlockingTask> Blockers(int targetState, IEnumerable<string> functions, string? patchModule = null)
    {
        var wanted = functions.ToHashSet(StringComparer.Ordinal);
        var blockers = new List<BlockingTask>();
        foreach (var pidDir in EnumerateNumericDirectories(_paths.Proc))
        {
            var pid = int.Parse(Path.GetFileName(pidDir), System.Globalization.CultureInfo.InvariantCulture);
            var taskRoot = Path.Combine(pidDir, "task");
            var threads = EnumerateNumericDirectories(taskRoot).ToList();
            if (threads.Count == 0)
                threads.Add(pidDir);
            foreach (var taskDir in threads)
            {
                var stateText = LivepatchSysfs.ReadText(Path.Combine(taskDir, "patch_state"));
                if (stateText is null || !int.TryParse(stateText, out var state) || state == -1 || state == targetState)
                    continue;
                var tid = int.Parse(Path.GetFileName(taskDir), System.Globalization.CultureInfo.InvariantCulture);
                var comm = LivepatchSysfs.ReadText(Path.Combine(taskDir, "comm")) ?? "?";
                var stack = (LivepatchSysfs.ReadText(Path.Combine(taskDir, "stack")) ?? "")
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                string? function = null;
                foreach (var frame in stack)
                {
                    var name = FrameFunction(frame);
                    if (name is not null && (wanted.Contains(name) || (patchModule is not null && frame.EndsWith($"[{patchModule}]", StringComparison.Ordinal))))
                    {
                        function = name;
                        break;
                    }
                }
                blockers.Add(new BlockingTask(pid, tid, comm, state, function, stack.Take(16).ToList()));
            }
        }
        return blockers;
    }

    /// <summary>The function of a <c>/proc/&lt;pid&gt;/stack</c> line such as
    /// <c>[&lt;0&gt;] fixture_block+0x4f/0x90 [lg_fixture]</c>, or null.</summary>
    public static string? FrameFunction(string frame)
    {
        var text = frame.Trim();
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
                return null;
            text = text[(close + 1)..].TrimStart();
        }
        var end = text.IndexOfAny(['+', ' ']);
        var name = end < 0 ? text : text[..end];
        return name.Length == 0 ? null : name;
    }

    private static IEnumerable<string> EnumerateNumericDirectories(string root)
    {
        string[] entries;
        try
        {
            entries = Directory.GetDirectories(root);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        return entries.Where(d => Path.GetFileName(d).All(char.IsAsciiDigit));
    }
}
