using System.Diagnostics;

namespace Irr.Realign;

/// <summary>
/// Seconds per named phase, added into a dictionary (<see cref="RealignReport.PhaseSeconds"/>) by <c>using</c> scopes:
/// <c>using (clock.Phase("forward")) { … }</c>. Scopes nest: time inside an inner scope counts for the inner phase only
/// (a Hessian accumulated inside the forward pass is "hessian" time, not "forward" time).
/// </summary>
internal sealed class PhaseClock(Dictionary<string, double> seconds)
{
    private readonly Stack<string> open = new();
    private long since;

    /// <summary>Opens a phase; disposing the scope closes it.</summary>
    public Scope Phase(string name)
    {
        Flush();
        open.Push(name);
        return new Scope(this);
    }

    // Adds the time since the last change to the innermost open phase.
    private void Flush()
    {
        long now = Stopwatch.GetTimestamp();
        if (open.TryPeek(out var current)) seconds[current] = seconds.GetValueOrDefault(current) + Stopwatch.GetElapsedTime(since, now).TotalSeconds;
        since = now;
    }

    /// <summary>An open phase.</summary>
    public readonly struct Scope(PhaseClock clock) : IDisposable
    {
        /// <summary>Closes the phase.</summary>
        public void Dispose()
        {
            clock.Flush();
            clock.open.Pop();
        }
    }
}
