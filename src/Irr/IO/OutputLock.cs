using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Irr.IO;

/// <summary>
/// One writer per output (issue 24, "two writers"): <see cref="OutputDirectory.Create"/> takes an exclusive lock on
/// <c>.NAME.irr-lock</c> beside the target (<c>flock(2)</c>, so the lock of a process that dies vanishes with it), and a
/// second run that writes the same target fails at once, before any work, with one line naming the process that holds it.
/// The file holds the holder's process id and is deleted when the lock is released. Inside a command of the command line
/// (<see cref="HoldForCommand"/>) a lock, once taken, is held until the command ends, so the early check a job makes before
/// its work (<c>OutputDirectory.Create(…).Dispose()</c>) reserves the output for the whole run. Linux only (elsewhere no lock
/// is taken and the last rename wins).
/// </summary>
public static class OutputLock
{
    /// <summary>The lock file's suffix after the target's name (and a leading dot): <c>.NAME.irr-lock</c>.</summary>
    public const string Suffix = ".irr-lock";

    private sealed class Held(int fd, string target, Scope? scope)
    {
        public readonly int Fd = fd;
        public readonly string Target = target;
        public readonly Scope? Scope = scope;
        public int Active;
        public bool Written;
    }

    private static readonly Dictionary<string, Held> Locks = new(StringComparer.Ordinal); // lock path → held lock
    private static readonly AsyncLocal<Scope?> CurrentScope = new();

    /// <summary>The lock file of a target: <c>DIR/.NAME.irr-lock</c>.</summary>
    public static string PathFor(string fullTarget) =>
        Path.Combine(Path.GetDirectoryName(fullTarget) ?? ".", "." + Path.GetFileName(fullTarget) + Suffix);

    /// <summary>
    /// Takes the lock of <paramref name="fullTarget"/> for one writer; returns the lock's path, to give to <see cref="Release"/>.
    /// </summary>
    /// <exception cref="IrrException">Another process (or another writer in this one) holds it.</exception>
    public static string Acquire(string fullTarget, string shownTarget)
    {
        string path = PathFor(fullTarget);
        if (!OperatingSystem.IsLinux()) return path;
        lock (Locks)
        {
            if (Locks.TryGetValue(path, out var held))
            {
                if (held.Active > 0)
                    throw new IrrException($"{Diagnostics.Escape(shownTarget)}: is being written by another job of this irr process; choose another output");
                held.Active++;
                return path;
            }
            for (int attempt = 0; ; attempt++)
            {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0b110_100_100);
                if (fd < 0) return path; // cannot create a lock file (a read-only directory): writing the temporary fails next, with its own error
                if (flock(fd, LOCK_EX | LOCK_NB) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    close(fd);
                    if (errno != EWOULDBLOCK) return path; // a file system without locks
                    string holder = ReadHolder(path);
                    throw new IrrException($"{Diagnostics.Escape(shownTarget)}: another irr run{holder} is writing it (its lock {Diagnostics.Escape(path)}); " +
                                           "wait for it to finish, or choose another output");
                }
                // The previous holder deletes the file before it lets go: a lock taken on a deleted file locks nothing.
                if (IsDeleted(fd) && attempt < 10)
                {
                    close(fd);
                    continue;
                }
                byte[] pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
                ftruncate(fd, 0);
                pwrite(fd, pid, pid.Length, 0);
                Locks[path] = new Held(fd, fullTarget, CurrentScope.Value) { Active = 1 };
                Temporaries.Register(path, fullTarget);
                return path;
            }
        }
    }

    /// <summary>Notes that the target of a lock was written (committed): an interruption later does not call it unwritten.</summary>
    public static void MarkWritten(string path)
    {
        lock (Locks)
            if (Locks.TryGetValue(path, out var held)) held.Written = true;
    }

    /// <summary>
    /// The targets this command (execution context) holds a lock for and has not written: what an interrupted command did
    /// not write, though it may not have begun writing them (<see cref="Interruption.Discarded"/> holds the others).
    /// </summary>
    public static IReadOnlyList<string> Unwritten
    {
        get
        {
            var scope = CurrentScope.Value;
            lock (Locks) return [.. Locks.Values.Where(h => !h.Written && h.Scope is not null && ReferenceEquals(h.Scope, scope)).Select(h => h.Target)];
        }
    }

    /// <summary>Ends one writer's use of a lock; the lock itself is let go now, or at the end of the command (<see cref="HoldForCommand"/>).</summary>
    public static void Release(string path)
    {
        lock (Locks)
        {
            if (!Locks.TryGetValue(path, out var held)) return;
            held.Active = Math.Max(0, held.Active - 1);
            if (held.Active == 0 && held.Scope is not { Open: true }) LetGo(path, held);
        }
    }

    /// <summary>
    /// Holds every lock taken in this execution context from now until the result is disposed: a command's early check of
    /// its output then reserves it until the command ends. (Per execution context: commands that tests run in parallel in
    /// one process each hold only their own.)
    /// </summary>
    public static IDisposable HoldForCommand()
    {
        var scope = new Scope(CurrentScope.Value);
        CurrentScope.Value = scope;
        return scope;
    }

    private sealed class Scope(Scope? previous) : IDisposable
    {
        public bool Open { get; private set; } = true;

        public void Dispose()
        {
            if (!Open) return;
            Open = false;
            CurrentScope.Value = previous;
            lock (Locks)
                foreach (var (path, held) in Locks.ToList())
                    if (held.Active == 0 && ReferenceEquals(held.Scope, this)) LetGo(path, held);
        }
    }

    // Delete, then unlock: whoever opened the file before it was deleted finds, once it holds the lock, a deleted file.
    // The file is deleted where it is now: a lock taken inside another output's temporary directory (irr demo's models,
    // a sweep's points) has moved with it when that directory was committed, before the command let go of its locks.
    private static void LetGo(string path, Held held)
    {
        Locks.Remove(path);
        if (!held.Written && Interruption.Requested) Interruption.Discard(held.Target);
        string? now = LinkOf(held.Fd);
        try { if (now is null || !now.EndsWith(Deleted, StringComparison.Ordinal)) File.Delete(now ?? path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        close(held.Fd);
        Temporaries.Unregister(path, committed: true);
    }

    private static bool IsDeleted(int fd) => LinkOf(fd)?.EndsWith(Deleted, StringComparison.Ordinal) == true;

    private const string Deleted = " (deleted)";

    // Where the open file is now ("PATH (deleted)" once deleted; /proc/self/fd, proc(5)), or null when that is unknown.
    private static string? LinkOf(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd.ToString(CultureInfo.InvariantCulture)}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // " (process 4711)" from the lock file (read without a lock: .NET's readers would take a shared flock and fail), or "".
    private static string ReadHolder(string path)
    {
        int fd = open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) return "";
        try
        {
            var buffer = new byte[32];
            nint n = pread(fd, buffer, buffer.Length, 0);
            if (n <= 0) return "";
            string text = Encoding.ASCII.GetString(buffer, 0, (int)n).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? $" (process {pid})" : "";
        }
        finally
        {
            close(fd);
        }
    }

    private const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000; // Linux (x86-64, arm64)
    private const int LOCK_EX = 2, LOCK_NB = 4, EWOULDBLOCK = 11;

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int flock(int fd, int operation);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int ftruncate(int fd, long length);

    [DllImport("libc", SetLastError = true)]
    private static extern nint pwrite(int fd, byte[] buffer, nint count, long offset);

    [DllImport("libc", SetLastError = true)]
    private static extern nint pread(int fd, byte[] buffer, nint count, long offset);
}
