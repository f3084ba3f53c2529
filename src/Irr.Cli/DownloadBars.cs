using System.Diagnostics;
using System.Globalization;
using Irr.IO;

namespace Irr.Cli;

/// <summary>
/// A progress bar per file the Hub client downloads (<see cref="HubClient.Observe"/>), on standard error: on a terminal one
/// line redrawn in place (file, bar, percent, bytes, rate) and kept when the file is finished; redirected, a line when a file
/// starts and one when it is finished, so a cluster's log shows what was fetched without carriage returns. A file is
/// finished when the client says so (<see cref="HubDownloadProgress.Finished"/>: verified and in the cache), not when its
/// bytes are all in: a download refused for its SHA-256 is never "downloaded".
/// </summary>
internal sealed class DownloadBars
{
    private const int Width = 30;
    private readonly TextWriter error;
    private readonly bool terminal;
    private readonly Stopwatch clock = new();
    private string? file;
    private long startedAt;
    private long lastDrawn = -1;

    private DownloadBars(TextWriter error)
    {
        this.error = error;
        terminal = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
    }

    /// <summary>Draws the downloads of this command line until the result is disposed (which ends an unfinished bar's line).</summary>
    public static Scope Listen(TextWriter error)
    {
        var bars = new DownloadBars(error);
        return new Scope(bars, HubClient.Observe(bars.Report));
    }

    /// <summary>The downloads drawn for one command line.</summary>
    internal sealed class Scope(DownloadBars bars, IDisposable observing) : IDisposable
    {
        /// <summary>Ends the line of a bar a stop or an error cut short, so that the next line (the error, the closing line) starts at the margin.</summary>
        public void EndLine() => bars.EndLine();

        /// <inheritdoc/>
        public void Dispose()
        {
            observing.Dispose();
            bars.EndLine();
        }
    }

    private void EndLine()
    {
        lock (clock)
        {
            if (terminal && file is not null) error.WriteLine();
            file = null;
        }
    }

    private void Report(HubDownloadProgress p)
    {
        lock (clock)
        {
            if (p.File != file) Start(p);
            bool whole = p.Finished;
            if (terminal && (whole || clock.ElapsedMilliseconds - lastDrawn >= 100))
            {
                lastDrawn = clock.ElapsedMilliseconds;
                error.Write("\r" + Line(p) + (whole ? "\n" : ""));
                error.Flush();
            }
            else if (!terminal && whole)
                error.WriteLine($"downloaded {Diagnostics.Escape(p.File)} ({Bytes(p.Total)})");
            if (whole) file = null;
        }
    }

    private void Start(HubDownloadProgress p)
    {
        if (terminal && file is not null) error.WriteLine(); // the previous file's line ends (it was not whole: a new file means it stopped)
        file = p.File;
        startedAt = p.Done; // a resumed download's rate counts only what this run fetches
        clock.Restart();
        lastDrawn = -1000;
        if (!terminal) error.WriteLine($"downloading {Diagnostics.Escape(p.File)}{(p.Total > 0 ? $" ({Bytes(p.Total)})" : "")}{(p.Done > 0 ? $", resuming at {Bytes(p.Done)}" : "")}");
    }

    // "config.json ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  100%  1.2 kB/1.2 kB  3.4 MB/s"
    private string Line(HubDownloadProgress p)
    {
        double fraction = p.Total > 0 ? Math.Clamp((double)p.Done / p.Total, 0, 1) : 0;
        int filled = (int)Math.Round(fraction * Width);
        double seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
        string rate = Bytes((long)((p.Done - startedAt) / seconds)) + "/s";
        string size = p.Total > 0 ? $"{Bytes(p.Done)}/{Bytes(p.Total)}" : Bytes(p.Done);
        return string.Create(CultureInfo.InvariantCulture,
            $"{Diagnostics.Escape(p.File)} {new string('━', filled)}{new string('╺', Width - filled)} {fraction * 100,3:F0}%  {size}  {rate}   ");
    }

    /// <summary>A size in decimal units as the Hub shows them: "512 B", "1.2 kB", "4.9 GB".</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1000 && unit < units.Length - 1) { value /= 1000; unit++; }
        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{value:F1} {units[unit]}");
    }
}
