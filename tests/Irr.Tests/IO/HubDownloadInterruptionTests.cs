using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>A download stopped mid-file notes, for the closing line, that a rerun resumes it (run alone: the notes are process-wide).</summary>
[Collection(nameof(InterruptionRequests))]
public class HubDownloadInterruptionTests
{
    [Fact]
    public void AStopMidFileNotesThatThePartialDownloadIsKeptForARerun()
    {
        Interruption.Reset();
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var weights = new byte[3 << 20];
        new Random(5).NextBytes(weights);
        hub.Add("org/name").Commit(new Dictionary<string, byte[]> { ["config.json"] = [(byte)'{', (byte)'}'], ["model.safetensors"] = weights });
        using var stop = new CancellationTokenSource();
        var client = new HubClient(new HubSettings(hub.Url, null, dir["hub"], false)) { RetryDelay = TimeSpan.Zero };
        using (HubClient.Observe(p => { if (p.File == "model.safetensors" && p.Done > 0) stop.Cancel(); }))
            Assert.ThrowsAny<OperationCanceledException>(() => client.Snapshot("org/name", "main", "model", HubFiles.Model, stop.Token));
        Assert.Equal([HubClient.PartialKept], Interruption.Kept);
        Assert.EndsWith("; a partial download is kept in the Hugging Face cache; run the same command to resume it", Interruption.ClosingLine());
        Interruption.Reset();
    }
}
