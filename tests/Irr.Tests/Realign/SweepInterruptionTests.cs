using Irr.Realign;
using Irr.Tests.Cli;

namespace Irr.Tests.Realign;

/// <summary>
/// An interrupted sweep keeps its finished models and says so (issue 24): the stop is requested when the second point
/// starts (its first progress report), as Ctrl-C would be; the first point is kept with its record, nothing of the
/// second is left, and a rerun resumes from the first (docs/SWEEP.md: "an interrupted sweep leaves finished points").
/// </summary>
[Collection(nameof(InterruptionRequests))]
public class SweepInterruptionTests
{
    [Fact]
    public void AnInterruptedSweepKeepsItsFinishedPointsAndTheRerunResumesFromThem()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        Interruption.Reset();
        try
        {
            var job = w.Job(sweep, 0, 0.5);
            Assert.Throws<OperationCanceledException>(() => job.Run(p =>
            {
                if (p.Stage.StartsWith("irr-s0.5 ", StringComparison.Ordinal)) Interruption.Request("SIGINT");
            }));
            Assert.Equal([$"kept 1 of 4 finished sweep models in {sweep}; run the same command to resume"], Interruption.Kept);
            Assert.True(File.Exists(Path.Combine(sweep, "points/irr-s0", SweepJob.PointFileName)));
            Assert.False(Directory.Exists(Path.Combine(sweep, "points/irr-s0.5")));
            Assert.False(File.Exists(Path.Combine(sweep, SweepJob.FileName)));
            Assert.Empty(Directory.EnumerateFileSystemEntries(w.Dir.Path, "*.irr-*", SearchOption.AllDirectories));
        }
        finally
        {
            Interruption.Reset();
        }
        var rerun = w.Job(sweep, 0, 0.5).Run();
        Assert.Equal(1, rerun.Resumed);
        Assert.Equal(1, rerun.Realigned);
    }
}
