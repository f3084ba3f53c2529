namespace Irr.Cli;

/// <summary>
/// The library's warnings (<see cref="Diagnostics.Warn"/>) during one command line, printed as <c>warning: …</c>
/// on standard error, each once: <see cref="Program"/> listens for the whole command and prints what is pending
/// before an error line and at the end; <see cref="CommandSupport.Run{T}"/> prints them right after the progress
/// bars (never while the bars draw).
/// </summary>
internal sealed class Warnings(TextWriter error)
{
    private static readonly AsyncLocal<Warnings?> CurrentPrinter = new();
    private readonly HashSet<string> seen = new(StringComparer.Ordinal);
    private readonly List<string> pending = [];

    /// <summary>The printer of the command line running in this execution context, if any.</summary>
    public static Warnings? Current => CurrentPrinter.Value;

    /// <summary>Listens for the library's warnings until the result is disposed.</summary>
    public static IDisposable Listen(TextWriter error)
    {
        var previous = CurrentPrinter.Value;
        var printer = new Warnings(error);
        CurrentPrinter.Value = printer;
        var listening = Diagnostics.Listen(printer.Add);
        return new Scope(() =>
        {
            listening.Dispose();
            CurrentPrinter.Value = previous;
        });
    }

    /// <summary>Prints the warnings not printed yet.</summary>
    public void Flush()
    {
        lock (pending)
        {
            foreach (string message in pending) error.WriteLine($"warning: {Diagnostics.Escape(message)}");
            pending.Clear();
        }
    }

    private void Add(string message)
    {
        lock (pending)
            if (seen.Add(message)) pending.Add(message);
    }

    private sealed class Scope(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
