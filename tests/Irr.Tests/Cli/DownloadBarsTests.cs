using System.Text;
using Irr.Cli;
using Irr.IO;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary><see cref="DownloadBars"/> redirected (a log): "downloaded" is said only of a file the client finished, never of one refused for its SHA-256.</summary>
public class DownloadBarsTests
{
    [Fact]
    public void ADownloadRefusedForItsSha256IsNeverSaidToBeDownloaded()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var weights = new byte[5000];
        new Random(3).NextBytes(weights);
        hub.Add("org/name").Commit(new Dictionary<string, byte[]> { ["config.json"] = Encoding.UTF8.GetBytes("{}"), ["model.safetensors"] = weights });
        hub.WrongBody.Add("model.safetensors");
        var client = new HubClient(new HubSettings(hub.Url, null, dir["hub"], false)) { RetryDelay = TimeSpan.Zero };
        var log = new StringWriter();
        using (DownloadBars.Listen(log))
            Assert.Throws<IrrException>(() => client.Snapshot("org/name", "main", "model", HubFiles.Model));
        Assert.Equal(["downloading config.json (2 B)", "downloaded config.json (2 B)", "downloading model.safetensors (5.0 kB)"],
            log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
