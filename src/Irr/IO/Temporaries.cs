using System.Globalization;
using System.Text;

namespace Irr.IO;

/// <summary>
/// The hidden temporaries that outputs are written into before they are renamed into place
/// (<c>.NAME.irr-tmp-PID-XXXXXXXX</c> beside the target NAME; <see cref="OutputDirectory"/>, <see cref="AtomicFile"/>,
/// <see cref="CheckpointWriter.WriteFile"/>), with a process-wide registry of the live ones. An interrupted command deletes
/// its temporaries as it unwinds (each writer's <c>Dispose</c>); the registry lets the last resort — a second Ctrl-C, which
/// ends irr at once (<see cref="Interruption"/>) — delete them too. A temporary left by a process that was killed outright
/// (SIGKILL, a power cut) is removed by the next run that writes the same target (<see cref="RemoveStale"/>).
/// </summary>
public static class Temporaries
{
    /// <summary>What follows the target's name in a temporary's name (after a leading dot): <c>.NAME.irr-tmp-PID-…</c>.</summary>
    public const string Marker = ".irr-tmp-";

    private static readonly Dictionary<string, string> Live = new(StringComparer.Ordinal); // temporary → target

    /// <summary>A fresh temporary path beside <paramref name="fullTarget"/>: <c>DIR/.NAME.irr-tmp-PID-XXXXXXXX</c> (not created).</summary>
    /// <param name="fullTarget">The target's full path.</param>
    public static string NameFor(string fullTarget)
    {
        string dir = Path.GetDirectoryName(fullTarget) ?? ".";
        return Path.Combine(dir, $".{Path.GetFileName(fullTarget)}{Marker}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
    }

    /// <summary>
    /// Writes one file whole or not at all: <paramref name="write"/> fills a registered temporary beside
    /// <paramref name="fullTarget"/> (its parent exists), which is then renamed over the target; on an exception, an
    /// interruption included, the temporary is deleted and the target is left as it was. Stale temporaries of the target
    /// are removed first (<see cref="RemoveStale"/>). Two processes writing one file each write their own temporary, and
    /// the last rename wins (as with <c>torch.save</c>): the file is always one writer's whole result.
    /// </summary>
    public static void WriteFile(string fullTarget, Action<string> write)
    {
        OutputPolicy.RequireReplaceable(fullTarget); // never renamed over /dev/null or a FIFO
        RemoveStale(fullTarget);
        string temporary = NameFor(fullTarget);
        Register(temporary, fullTarget);
        bool committed = false;
        try
        {
            write(temporary);
            File.Move(temporary, fullTarget, overwrite: true);
            committed = true;
        }
        finally
        {
            if (committed) Unregister(temporary, committed: true);
            else Abandon(temporary);
        }
    }

    /// <summary>Records a live temporary (file or directory) written for <paramref name="target"/>.</summary>
    public static void Register(string temporary, string target)
    {
        lock (Live) Live[temporary] = target;
    }

    /// <summary>
    /// Forgets a temporary that was renamed into place or deleted. When that happens because a stop was requested
    /// (<see cref="Interruption.Requested"/>) and it was not committed, the target is noted as not written
    /// (<see cref="Interruption.Discard"/>).
    /// </summary>
    public static void Unregister(string temporary, bool committed)
    {
        string? target;
        lock (Live)
            if (!Live.Remove(temporary, out target)) return;
        if (!committed && Interruption.Requested) Interruption.Discard(target);
    }

    /// <summary>
    /// Deletes a temporary that will not be committed and forgets it; one that cannot be deleted stays registered (for the
    /// last resort to try again, and so that the command line does not call it removed).
    /// </summary>
    public static void Abandon(string temporary)
    {
        if (TryDelete(temporary)) Unregister(temporary, committed: false);
        else
        {
            string? target;
            lock (Live) Live.TryGetValue(temporary, out target);
            if (target is not null && Interruption.Requested) Interruption.Discard(target);
        }
    }

    /// <summary>The live temporaries (for tests and diagnostics).</summary>
    public static IReadOnlyList<string> Current
    {
        get { lock (Live) return [.. Live.Keys]; }
    }

    /// <summary>
    /// Deletes every live temporary, best effort and without throwing: the last resort when irr ends at once
    /// (a second signal), skipping the unwinding that would delete them one by one.
    /// </summary>
    public static void DeleteAll()
    {
        string[] paths;
        lock (Live) paths = [.. Live.Keys];
        // The work is still running while this deletes (its threads end only with the process): a file written into a
        // directory being deleted makes the deletion fail, and Directory.CreateDirectory of a path inside brings the
        // directory back. So delete in passes, a moment apart, until none is left (at most about a second).
        for (int pass = 0; pass < 20; pass++)
        {
            bool left = false;
            foreach (string path in paths)
                if (!TryDelete(path)) left = true;
            if (pass > 0 && !left) break;
            Thread.Sleep(pass == 0 ? 20 : 50);
        }
    }

    /// <summary>
    /// Removes the temporaries beside <paramref name="fullTarget"/> (<c>.NAME.irr-tmp-PID-…</c>, files or directories) that
    /// belong to no live irr process — what a process killed outright (SIGKILL, out of memory, a power cut) left behind —
    /// and warns once per removal, naming it. A temporary of a live irr process (another run writing the same target) is
    /// left alone, and so are this process's own.
    /// </summary>
    /// <param name="fullTarget">The target's full path.</param>
    public static void RemoveStale(string fullTarget)
    {
        string? dir = Path.GetDirectoryName(fullTarget);
        if (dir is null || !Directory.Exists(dir)) return;
        string prefix = "." + Path.GetFileName(fullTarget) + Marker;
        IEnumerable<string> entries;
        try
        {
            entries = [.. Directory.EnumerateFileSystemEntries(dir, "." + EscapePattern(Path.GetFileName(fullTarget)) + Marker + "*")];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (string entry in entries)
        {
            string name = Path.GetFileName(entry);
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int pid = OwnerOf(name[prefix.Length..]);
            if (pid <= 0 || pid == Environment.ProcessId || IsLiveIrr(pid)) continue;
            lock (Live)
                if (Live.ContainsKey(entry)) continue;
            // An overwrite killed between its two renames: the target is gone and its previous copy is aside. Put it back
            // rather than delete the user's only copy.
            if (name.EndsWith(".previous", StringComparison.Ordinal) && !Directory.Exists(fullTarget) && !File.Exists(fullTarget))
            {
                try
                {
                    Directory.Move(entry, fullTarget);
                    Diagnostics.Warn($"restored {Diagnostics.Escape(fullTarget)} from {Diagnostics.Escape(entry)}, where irr process {pid} had moved it aside before it was killed while replacing it");
                    continue;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
            if (TryDelete(entry))
                Diagnostics.Warn($"removed {Diagnostics.Escape(entry)}, left by irr process {pid} that was killed before it finished");
        }
    }

    /// <summary>The process id in a temporary's name after the marker ("4711-abcd1234" → 4711), or 0.</summary>
    internal static int OwnerOf(string afterMarker)
    {
        int end = 0;
        while (end < afterMarker.Length && char.IsAsciiDigit(afterMarker[end])) end++;
        return end > 0 && int.TryParse(afterMarker.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : 0;
    }

    /// <summary>
    /// Whether <paramref name="pid"/> is a running process that may be irr (its command line names irr or a .NET test host):
    /// a process id reused by an unrelated program does not keep a temporary alive. Where <c>/proc</c> is missing, any
    /// process counts.
    /// </summary>
    internal static bool IsLiveIrr(int pid)
    {
        if (!Directory.Exists("/proc/self")) return ProcessExists(pid);
        string proc = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}";
        if (!Directory.Exists(proc)) return false;
        try
        {
            byte[] cmdline = File.ReadAllBytes(proc + "/cmdline");
            if (cmdline.Length == 0) return false; // a zombie, or a kernel thread
            string text = Encoding.UTF8.GetString(cmdline).Replace('\0', ' ');
            return text.Contains("irr", StringComparison.OrdinalIgnoreCase) || text.Contains("testhost", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Directory.Exists(proc); // another user's process we cannot read: assume it may be irr
        }
    }

    private static bool ProcessExists(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Deletes a file or directory tree, retrying briefly (a writer may still add files); true when it is gone.</summary>
    internal static bool TryDelete(string path)
    {
        for (int attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                if (Directory.Exists(path) && !File.GetAttributes(path).HasFlag(FileAttributes.ReparsePoint)) Directory.Delete(path, recursive: true);
                else if (File.Exists(path) || Directory.Exists(path)) File.Delete(path);
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (e is UnauthorizedAccessException) return false;
            }
        }
        return !File.Exists(path) && !Directory.Exists(path);
    }

    /// <summary>Whether <paramref name="path"/> lies inside a temporary (a directory named <c>.NAME.irr-tmp-…</c>): an output of another output's work.</summary>
    public static bool IsInsideTemporary(string path) =>
        path.Split(Path.DirectorySeparatorChar).SkipLast(1).Any(part => part.Contains(Marker, StringComparison.Ordinal));

    private static string EscapePattern(string name) =>
        name.IndexOfAny(['*', '?', '[']) < 0 ? name : "*"; // a glob character in the name: match broadly, filter by prefix
}
