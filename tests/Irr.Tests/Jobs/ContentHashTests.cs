using Irr.Jobs;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>ContentHash.OfModel: the model files only, remembered per path while the files are unchanged, computed again when they change.</summary>
public class ContentHashTests
{
    [Fact]
    public void AModelHashCountsItsModelFilesAndFollowsAChange()
    {
        using var dir = new TempDir();
        string model = Directory.CreateDirectory(dir["m"]).FullName, copy = Directory.CreateDirectory(dir["copy"]).FullName;
        File.WriteAllText(Path.Combine(model, "config.json"), "{\"a\": 1}");
        File.WriteAllBytes(Path.Combine(model, "model.safetensors"), [1, 2, 3, 4]);
        string first = ContentHash.OfModel(model)!;
        // Another file (a report, a README) does not count; asked again, the same hash.
        File.WriteAllText(Path.Combine(model, "irr-report.json"), "{}");
        Assert.Equal(first, ContentHash.OfModel(model));

        // The weights change, to bytes of the same size: the hash follows, and equals a fresh computation on a copy.
        File.WriteAllBytes(Path.Combine(model, "model.safetensors"), [1, 2, 3, 5]);
        File.SetLastWriteTimeUtc(Path.Combine(model, "model.safetensors"), DateTime.UtcNow.AddSeconds(5));
        string changed = ContentHash.OfModel(model)!;
        Assert.NotEqual(first, changed);
        File.Copy(Path.Combine(model, "config.json"), Path.Combine(copy, "config.json"));
        File.Copy(Path.Combine(model, "model.safetensors"), Path.Combine(copy, "model.safetensors"));
        Assert.Equal(changed, ContentHash.OfModel(copy));
        Assert.Null(ContentHash.OfModel(dir["absent"]));
    }
}
