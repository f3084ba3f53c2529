namespace Irr;

/// <summary>
/// The process-wide request to stop (Ctrl-C, SIGTERM from kill, a scheduler's time limit or an eviction; issue 24).
/// The command line calls <see cref="Request"/> from its signal handler; long work calls <see cref="ThrowIfRequested"/>
/// between steps (a layer, a batch, a generated token, a tensor written), or passes <see cref="Token"/> to what awaits,
/// and so ends with an <see cref="OperationCanceledException"/> that unwinds through every <c>using</c>: temporary
/// files and directories are deleted on the way, started servers stopped. What a job keeps for a rerun (sweep points,
/// cached answers) it says with <see cref="Keep"/>; the command line prints it in its one closing line.
/// </summary>
public static class Interruption
{
    private static CancellationTokenSource _source = new();
    private static readonly object Gate = new();
    private static readonly List<string> KeptNotes = [];

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

    /// <summary>Starts afresh (a new command in the same process: the tests run many in one).</summary>
    public static void Reset()
    {
        lock (Gate)
        {
            Signal = null;
            KeptNotes.Clear();
            if (_source.IsCancellationRequested) _source = new CancellationTokenSource();
        }
    }
}
