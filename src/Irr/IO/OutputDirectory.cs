using System.Runtime.InteropServices;

namespace Irr.IO;

/// <summary>
/// A directory written as a whole or not at all: files go into a hidden temporary directory next to
/// the target (same file system), and <see cref="Commit"/> renames it into place. Disposing without
/// committing deletes the temporary directory, so an error or a crash never leaves a half-written
/// model under the target name. The target may not be, contain, or lie inside an input directory.
/// One writer per target: <see cref="Create"/> takes the target's <see cref="OutputLock"/> (a second run writing the same
/// target fails at once, naming the first), removes what killed runs left beside it (<see cref="Temporaries.RemoveStale"/>),
/// and registers its temporary, so that an interruption deletes it even when irr ends at once (<see cref="Interruption"/>).
/// </summary>
public sealed class OutputDirectory : IDisposable
{
    private bool committed;

    private OutputDirectory(string target, string temporary, bool overwrite, string lockPath)
    {
        Target = target;
        TemporaryPath = temporary;
        this.overwrite = overwrite;
        this.lockPath = lockPath;
    }

    private readonly bool overwrite;
    private readonly string lockPath;
    private bool released;

    /// <summary>Where the directory will be once committed (full path).</summary>
    public string Target { get; }

    /// <summary>Where files are written until then.</summary>
    public string TemporaryPath { get; }

    /// <summary>
    /// Starts writing <paramref name="target"/>. Fails if it is one of <paramref name="inputs"/>, lies
    /// inside one, or contains one; or if it exists, is not empty and <paramref name="overwrite"/> is false; or if another
    /// run writes it now (<see cref="OutputLock"/>).
    /// </summary>
    public static OutputDirectory Create(string target, IEnumerable<string> inputs, bool overwrite = false)
    {
        string full = System.IO.Path.GetFullPath(target).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (full.Length == 0) full = System.IO.Path.DirectorySeparatorChar.ToString();
        string real = RealPath(full);
        foreach (string input in inputs)
        {
            string inputReal = RealPath(System.IO.Path.GetFullPath(input).TrimEnd(System.IO.Path.DirectorySeparatorChar));
            if (SameOrInside(real, inputReal))
                throw new IrrException($"{target}: refusing to write into the input model directory {input}");
            if (SameOrInside(inputReal, real))
                throw new IrrException($"{target}: refusing to write over {input}, an input model directory inside it");
        }
        if (File.Exists(full))
            throw new IrrException($"{target}: exists and is a file, not a directory");
        string parent = System.IO.Path.GetDirectoryName(full) ?? throw new IrrException($"{target}: cannot write to the root directory");
        Directory.CreateDirectory(parent);
        string lockPath = OutputLock.Acquire(full, target);
        try
        {
            Temporaries.RemoveStale(full); // may restore the target an overwrite killed midway had moved aside
            if (Directory.Exists(full) && !overwrite && Directory.EnumerateFileSystemEntries(full).Any())
                throw new IrrException($"{target}: {OutputPolicy.Exists} is not empty ({OutputPolicy.Remedy})");
            string temporary = Temporaries.NameFor(full);
            Temporaries.Register(temporary, full);
            try
            {
                Directory.CreateDirectory(temporary);
            }
            catch
            {
                Temporaries.Unregister(temporary, committed: true);
                throw;
            }
            return new OutputDirectory(full, temporary, overwrite, lockPath);
        }
        catch
        {
            OutputLock.Release(lockPath);
            throw;
        }
    }

    /// <summary>The temporary path of a file in the directory; <paramref name="fileName"/> must be a plain name.</summary>
    public string PathOf(string fileName)
    {
        if (!IsPlainFileName(fileName)) throw new ArgumentException($"'{fileName}' is not a plain file name.", nameof(fileName));
        return System.IO.Path.Combine(TemporaryPath, fileName);
    }

    /// <summary>Moves the finished directory into place (replacing an existing one when allowed).</summary>
    public void Commit()
    {
        if (committed) return;
        string? previous = null;
        if (Directory.Exists(Target))
        {
            if (!overwrite && Directory.EnumerateFileSystemEntries(Target).Any())
                throw new IrrException($"{Target}: appeared while it was being written (by another program); this run's result is kept in {KeepAside()}");
            previous = TemporaryPath + ".previous";
            Directory.Move(Target, previous);
        }
        Directory.Move(TemporaryPath, Target);
        committed = true;
        OutputLock.MarkWritten(lockPath);
        Temporaries.Unregister(TemporaryPath, committed: true);
        if (previous is not null) Temporaries.TryDelete(previous);
        Release();
    }

    // Moves the finished temporary to a visible name beside the target (TARGET.irr-PID), which nothing deletes.
    private string KeepAside()
    {
        string kept = $"{Target}.irr-{Environment.ProcessId}";
        if (Directory.Exists(kept) || File.Exists(kept)) kept += "-" + Guid.NewGuid().ToString("N")[..8];
        Directory.Move(TemporaryPath, kept);
        committed = true;
        Temporaries.Unregister(TemporaryPath, committed: true);
        Release();
        return kept;
    }

    private void Release()
    {
        if (released) return;
        released = true;
        OutputLock.Release(lockPath);
    }

    /// <summary>Deletes the temporary directory unless committed.</summary>
    public void Dispose()
    {
        if (!committed)
        {
            // Best effort: a leftover hidden temporary directory is removed by the next run into the target.
            Temporaries.Abandon(TemporaryPath);
        }
        Release();
    }

    /// <summary>Whether <paramref name="name"/> is a plain file name: not empty, no directory part, not "." or "..".</summary>
    public static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." &&
        name.IndexOfAny(['/', '\\', '\0']) < 0 && !System.IO.Path.IsPathRooted(name) &&
        !(OperatingSystem.IsWindows() && name.Contains(':'));

    private static bool SameOrInside(string path, string directory) =>
        string.Equals(path, directory, StringComparison.Ordinal) ||
        path.StartsWith(directory.EndsWith(System.IO.Path.DirectorySeparatorChar) ? directory : directory + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>
    /// The canonical path with symbolic links resolved, for the longest prefix that exists (the
    /// rest is appended as is), so two spellings of one directory compare equal.
    /// </summary>
    internal static string RealPath(string fullPath)
    {
        string existing = fullPath;
        var rest = new Stack<string>();
        while (!Directory.Exists(existing) && !File.Exists(existing))
        {
            string? parent = System.IO.Path.GetDirectoryName(existing);
            if (parent is null) return fullPath;
            rest.Push(System.IO.Path.GetFileName(existing));
            existing = parent;
        }
        string resolved = Resolve(existing) ?? existing;
        while (rest.Count > 0) resolved = System.IO.Path.Combine(resolved, rest.Pop());
        return resolved.Length > 1 ? resolved.TrimEnd(System.IO.Path.DirectorySeparatorChar) : resolved;
    }

    private static string? Resolve(string path)
    {
        if (OperatingSystem.IsWindows()) return System.IO.Path.GetFullPath(path);
        nint p = realpath(path, 0);
        if (p == 0) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { Marshal.FreeHGlobal(p); }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint resolved);
}
