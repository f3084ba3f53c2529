using Irr.Tensors;

namespace Irr.Tests;

/// <summary>
/// The tests that request a stop run alone: a stop request (<see cref="Interruption.Request"/>) is process-wide and would
/// stop the commands other tests run at the same time in this process.
/// </summary>
[CollectionDefinition(nameof(InterruptionRequests), DisableParallelization = true)]
public sealed class InterruptionRequests;

/// <summary>The process-wide stop request: what it stops, what it notes, and that a new command starts afresh.</summary>
[Collection(nameof(InterruptionRequests))]
public class InterruptionTests
{
    [Fact]
    public void ARequestStopsTheNextKernelAndTheNextCheckAndResetStartsAfresh()
    {
        Interruption.Reset();
        try
        {
            int ran = 0;
            ThreadTeam.Shared.Run(ThreadTeam.Shared.Size, (_, _) => Interlocked.Increment(ref ran));
            Assert.True(ran >= 1);
            Interruption.Request("SIGTERM");
            Interruption.Request("SIGINT"); // the first signal's name is kept
            Assert.True(Interruption.Token.IsCancellationRequested);
            Assert.Equal("SIGTERM", Interruption.Signal);
            Assert.Equal(143, Interruption.ExitCode(Interruption.Signal));
            Assert.Equal(130, Interruption.ExitCode("SIGINT"));
            ran = 0;
            Assert.Throws<OperationCanceledException>(() => ThreadTeam.Shared.Run(ThreadTeam.Shared.Size, (_, _) => Interlocked.Increment(ref ran)));
            Assert.Equal(0, ran); // stopped before the work started
            Assert.Throws<OperationCanceledException>(Interruption.ThrowIfRequested);
            Interruption.Keep("kept 1 of 2");
            Interruption.Keep("kept 1 of 2");
            Interruption.Discard("/x/out");
            Assert.Equal(["kept 1 of 2"], Interruption.Kept);
            Assert.Equal(["/x/out"], Interruption.Discarded);
        }
        finally
        {
            Interruption.Reset();
        }
        Assert.False(Interruption.Requested);
        Assert.Null(Interruption.Signal);
        Assert.Empty(Interruption.Kept);
        Assert.Empty(Interruption.Discarded);
        Interruption.ThrowIfRequested();
    }

    [Fact]
    public void AnInterruptedOutputDirectoryIsDeletedAndNotedAsNotWritten()
    {
        using var dir = new IO.TempDir();
        Interruption.Reset();
        try
        {
            var output = Irr.IO.OutputDirectory.Create(dir["out"], []);
            File.WriteAllText(output.PathOf("model.safetensors"), "half");
            Assert.Contains(output.TemporaryPath, Irr.IO.Temporaries.Current);
            Interruption.Request("SIGINT");
            output.Dispose(); // what the unwinding does
            Assert.False(Directory.Exists(output.TemporaryPath));
            Assert.DoesNotContain(output.TemporaryPath, Irr.IO.Temporaries.Current);
            Assert.Equal([dir["out"]], Interruption.Discarded);
            Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
        }
        finally
        {
            Interruption.Reset();
        }
    }
}
