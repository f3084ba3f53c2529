namespace Irr;

/// <summary>
/// Warnings the library gives while it works (a model directory with two weight layouts …), for whoever listens:
/// the library calls <see cref="Warn"/>, and a caller that wants them (the command line) wraps its work in
/// <see cref="Listen"/>. The listener flows with the execution context (an <see cref="AsyncLocal{T}"/>), so
/// concurrent callers (tests running commands in parallel, parallel loops) each hear only their own warnings.
/// Without a listener a warning is dropped; the objects that give one also expose it (e.g. <c>ModelDirectory.Warnings</c>).
/// </summary>
public static class Diagnostics
{
    private static readonly AsyncLocal<Action<string>?> Listener = new();

    /// <summary>Gives a one-line warning to the current listener, if any.</summary>
    /// <param name="message">The warning, without a "warning: " prefix.</param>
    public static void Warn(string message) => Listener.Value?.Invoke(message);

    /// <summary>Sends the warnings given in this execution context to <paramref name="listener"/> until the result is disposed.</summary>
    /// <param name="listener">Receives each warning.</param>
    /// <returns>Restores the previous listener when disposed.</returns>
    public static IDisposable Listen(Action<string> listener)
    {
        var previous = Listener.Value;
        Listener.Value = listener;
        return new Restore(previous);
    }

    /// <summary>The listener of this execution context, for a thread that does not inherit it (<see cref="Adopt"/>).</summary>
    internal static Action<string>? Current => Listener.Value;

    /// <summary>
    /// Makes <paramref name="listener"/> (another thread's <see cref="Current"/>) this thread's listener: what a dedicated
    /// worker thread (the kernels' thread team), whose execution context is not the caller's, does before running the
    /// caller's work, so that a warning given there reaches the command that asked for the work.
    /// </summary>
    internal static void Adopt(Action<string>? listener)
    {
        if (!ReferenceEquals(Listener.Value, listener)) Listener.Value = listener;
    }

    private sealed class Restore(Action<string>? previous) : IDisposable
    {
        public void Dispose() => Listener.Value = previous;
    }
}
