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

    /// <summary>
    /// <paramref name="text"/> made safe to print on one line of a terminal: text from a file or a server (a tensor name,
    /// a key, a template's error, a reply) may hold characters that end the line (and so forge an <c>error:</c> or
    /// <c>warning:</c> line) or drive the terminal (ESC sequences, BEL). Escaped are the C0 controls and DEL (<c>\n</c>,
    /// <c>\r</c>, <c>\t</c>, else <c>\xNN</c>: <c>\x1b</c>, <c>\x07</c>, <c>\x00</c>), the C1 controls (<c>\x85</c>, <c>\x9b</c> …),
    /// the line and paragraph separators U+2028/U+2029, the bidirectional controls that reorder what is shown
    /// (U+061C, U+200E/U+200F, U+202A–U+202E, U+2066–U+2069, as <c>\u202e</c>) and lone surrogates (<c>\ud800</c>).
    /// Everything else (letters of any script, emoji, a backslash) is kept as it is; text without such characters is
    /// returned unchanged (the same instance).
    /// </summary>
    /// <param name="text">Any text; null is returned as "".</param>
    /// <returns>The text with each such character written as its escape.</returns>
    public static string Escape(string? text)
    {
        if (text is null) return "";
        int first = 0;
        while (first < text.Length && !NeedsEscape(text, first)) first++;
        if (first == text.Length) return text;
        var b = new System.Text.StringBuilder(text.Length + 16);
        b.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                b.Append(c).Append(text[++i]);
                continue;
            }
            if (!NeedsEscape(text, i)) b.Append(c);
            else if (c == '\n') b.Append("\\n");
            else if (c == '\r') b.Append("\\r");
            else if (c == '\t') b.Append("\\t");
            else if (c <= '\u00ff') b.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            else b.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
        }
        return b.ToString();
    }

    private static bool NeedsEscape(string text, int i)
    {
        char c = text[i];
        if (c < ' ' || c is >= '\u007f' and <= '\u009f') return true;
        if (c is '\u2028' or '\u2029' or '\u061c' or '\u200e' or '\u200f' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069')) return true;
        if (char.IsHighSurrogate(c)) return !(i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]));
        if (char.IsLowSurrogate(c)) return !(i > 0 && char.IsHighSurrogate(text[i - 1]));
        return false;
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
