using System.Runtime.InteropServices;

namespace Irr.IO;

/// <summary>
/// A directory written as a whole or not at all: files go into a hidden temporary directory next to
/// the target (same file system), and <see cref="Commit"/> renames it into place. Disposing without
/// committing deletes the temporary directory, so an error or a crash never leaves a half-written
/// model under the target name. The target may not be, contain, or lie inside an input directory.
/// </summary>
public sealed class OutputDirectory : IDisposable
{
    private bool committed;

    private OutputDirectory(string target, string temporary, bool overwrite)
    {
        Target = target;
        TemporaryPath = temporary;
        this.overwrite = overwrite;
    }

    private readonly bool overwrite;

    /// <summary>Where the directory will be once committed (full path).</summary>
    public string Target { get; }

    /// <summary>Where files are written until then.</summary>
    public string TemporaryPath { get; }

    /// <summary>
    /// Starts writing <paramref name="target"/>. Fails if it is one of <paramref name="inputs"/>, lies
    /// inside one, or contains one; or if it exists, is not empty and <paramref name="overwrite"/> is false.
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
        if (Directory.Exists(full) && !overwrite && Directory.EnumerateFileSystemEntries(full).Any())
            throw new IrrException($"{target}: exists and is not empty (choose another output directory, or overwrite it)");
        string parent = System.IO.Path.GetDirectoryName(full) ?? throw new IrrException($"{target}: cannot write to the root directory");
        Directory.CreateDirectory(parent);
        string temporary = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(full)}.irr-tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(temporary);
        return new OutputDirectory(full, temporary, overwrite);
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
                throw new IrrException($"{Target}: appeared while it was being written; the result is left in {TemporaryPath}");
            previous = TemporaryPath + ".previous";
            Directory.Move(Target, previous);
        }
        Directory.Move(TemporaryPath, Target);
        committed = true;
        if (previous is not null) Directory.Delete(previous, recursive: true);
    }

    /// <summary>Deletes the temporary directory unless committed.</summary>
    public void Dispose()
    {
        if (committed) return;
        try
        {
            if (Directory.Exists(TemporaryPath)) Directory.Delete(TemporaryPath, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden temporary directory is harmless.
        }
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
