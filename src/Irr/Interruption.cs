using Irr.IO;
using System.Runtime.InteropServices;

namespace Irr;

/// <summary>
/// The process-wide request to stop (Ctrl-C, SIGTERM from kill, a scheduler's time limit or an eviction; issue 24).
/// The command line calls <see cref="Request"/> from its signal handler; long work calls <see cref="ThrowIfRequested"/>
/// between steps (a layer, a batch, a generated token, a tensor written), or passes <see cref="Token"/> to what awaits,
/// and so ends with an <see cref="OperationCanceledException"/> that unwinds through every <c>using</c>: temporary
/// files and directories are deleted on the way, started servers stopped. What a job keeps for a rerun (sweep points,
/// cached answers) it says with <see cref="Keep"/>; the command line prints it in its one closing line.
/// <para>
/// This class owns SIGINT and SIGTERM (<see cref="CatchSignals"/>): inside a command the first signal requests a stop; a
/// second one, or any signal when no command catches them, ends irr at once after the last resort (<see cref="LastResort"/>):
/// started serving engines are killed and every registered temporary (<see cref="IO.Temporaries"/>) is deleted.
/// </para>
/// </summary>
public static class Interruption
{
    private static CancellationTokenSource _source = new();
    private static readonly object Gate = new();
    private static readonly List<string> KeptNotes = [];
    private static readonly List<string> DiscardedTargets = [];
    private static PosixSignalRegistration[]? _registrations;
    private static int _catching;
    private static Func<string, string>? _onForcedExit;

    /// <summary>The exit code after <paramref name="signal"/> (128 + its number, as a shell reports it): 130 for SIGINT, 143 for SIGTERM.</summary>
    public static int ExitCode(string? signal) => signal == "SIGTERM" ? 143 : 130;

    /// <summary>Cancelled once a stop is requested.</summary>
    public static CancellationToken Token => _source.Token;

    /// <summary>Whether a stop was requested.</summary>
    public static bool Requested => _source.IsCancellationRequested;

    /// <summary>The signal that asked to stop ("SIGINT", "SIGTERM"), or null.</summary>
    public static string? Signal { get; private set; }

    /// <summary>Asks every running step to stop (idempotent; the first signal's name is kept).</summary>
    /// <param name="signal">The signal's name, e.g. "SIGINT".</param>
    public static void Request(string signal)
    {
        lock (Gate) Signal ??= signal;
        _source.Cancel();
    }

    /// <summary>Throws <see cref="OperationCanceledException"/> when a stop was requested; cheap enough for any loop.</summary>
    public static void ThrowIfRequested()
    {
        if (_source.IsCancellationRequested) throw new OperationCanceledException(Token);
    }

    /// <summary>
    /// Notes what the current work keeps for a rerun when it is stopped (e.g. "3 of 8 sweep points in runs/s; run the same
    /// command to resume"). Notes are printed, in order, by the command line after an interruption.
    /// </summary>
    /// <param name="note">One line, without a trailing period.</param>
    public static void Keep(string note)
    {
        lock (Gate) if (!KeptNotes.Contains(note)) KeptNotes.Add(note);
    }

    /// <summary>The notes given to <see cref="Keep"/> since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyList<string> Kept
    {
        get { lock (Gate) return [.. KeptNotes]; }
    }

    /// <summary>
    /// Notes an output that was not written because of the stop (its temporary was deleted): the command line says
    /// "nothing written to …". Called by the writers (<see cref="IO.Temporaries.Unregister"/>).
    /// </summary>
    /// <param name="target">The output's path.</param>
    public static void Discard(string target)
    {
        lock (Gate) if (!DiscardedTargets.Contains(target)) DiscardedTargets.Add(target);
    }

    /// <summary>The outputs given to <see cref="Discard"/> since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyList<string> Discarded
    {
        get { lock (Gate) return [.. DiscardedTargets]; }
    }

    /// <summary>
    /// Catches SIGINT and SIGTERM until the result is disposed: the first one calls <see cref="Request"/> (the work unwinds
    /// and the caller reports it); a second one runs <see cref="LastResort"/>, calls <paramref name="onForcedExit"/> with the
    /// signal's name, and ends the process at once with <see cref="ExitCode"/>. Outside such a scope a signal runs the last
    /// resort and then its default action (ending the process).
    /// </summary>
    /// <param name="onForcedExit">Says the one line before a forced exit (the command line's error stream) and returns the signal whose
    /// exit code to end with (the second signal's when it said the line; the first's when the unwound command had already said its line), or null.</param>
    public static IDisposable CatchSignals(Func<string, string>? onForcedExit = null)
    {
        EnsureSignalHandlers();
        Interlocked.Increment(ref _catching);
        if (onForcedExit is not null) _onForcedExit = onForcedExit;
        return new CatchScope();
    }

    private sealed class CatchScope : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref _catching);
        }
    }

    /// <summary>Installs the process's SIGINT and SIGTERM handlers (once; what a started serving engine needs, too).</summary>
    internal static void EnsureSignalHandlers()
    {
        if (Volatile.Read(ref _registrations) is not null) return;
        lock (Gate)
            _registrations ??= [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    private static void OnSignal(PosixSignalContext context)
    {
        string name = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT";
        bool catching = Volatile.Read(ref _catching) > 0;
        if (catching && !Requested)
        {
            context.Cancel = true;
            Request(name);
            return;
        }
        LastResort();
        if (!catching) return; // the default action ends the process
        context.Cancel = true;
        string exitAs = name;
        try { exitAs = _onForcedExit?.Invoke(name) ?? name; }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        Environment.Exit(ExitCode(exitAs));
    }

    /// <summary>
    /// What must happen even when irr ends without unwinding: kills the started serving engines and deletes every registered
    /// temporary file and directory. Never throws.
    /// </summary>
    public static void LastResort()
    {
        try { Eval.EngineServer.KillLive(); }
        catch (Exception) { /* best effort: ending the process must go on */ }
        try { IO.Temporaries.DeleteAll(); }
        catch (Exception) { /* best effort */ }
    }

    /// <summary>Starts afresh (a new command in the same process: the tests run many in one).</summary>
    public static void Reset()
    {
        lock (Gate)
        {
            Signal = null;
            KeptNotes.Clear();
            DiscardedTargets.Clear();
            if (_source.IsCancellationRequested) _source = new CancellationTokenSource();
        }
    }

    /// <summary>
    /// The closing line of an interrupted command, e.g. "interrupted (SIGINT): nothing written to out; temporary files
    /// removed", with what it kept ("kept 3 of 8 finished sweep models in runs/s; run the same command to resume").
    /// </summary>
    public static string ClosingLine()
    {
        var parts = new List<string>();
        // Outputs inside another output's temporary (the demo's models, a recipe step's files) are not the user's to hear of.
        var unwritten = Interruption.Discarded.Concat(OutputLock.Unwritten).Distinct(StringComparer.Ordinal)
            .Where(t => !Temporaries.IsInsideTemporary(t))
            .ToList();
        if (unwritten.Count > 0) parts.Add($"nothing written to {string.Join(", ", unwritten.Select(Shown))}");
        parts.Add(Temporaries.Current.Any(t => !t.EndsWith(OutputLock.Suffix, StringComparison.Ordinal)) ? "some temporary files may remain" : "temporary files removed");
        parts.AddRange(Interruption.Kept.Select(Diagnostics.Escape));
        return $"interrupted ({Interruption.Signal ?? "SIGINT"}): {string.Join("; ", parts)}";
    }

    // A path as the user would write it: relative to the current directory when inside it.
    private static string Shown(string path)
    {
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return Diagnostics.Escape(relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative);
    }
}
