using Irr.Demo;
using Irr.Tests.IO;

namespace Irr.Tests.Demo;

/// <summary>DemoBase.CopyTo: a base directory copied file by file, a missing file named, and the shipped base when there is one.</summary>
public class DemoBaseTests
{
    // A stand-in base directory: every file of DemoBase.Files with distinct seeded bytes (CopyTo copies; it does not parse).
    private static Dictionary<string, byte[]> WriteBase(string dir, int seed)
    {
        Directory.CreateDirectory(dir);
        var rng = new Random(seed);
        var contents = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string name in DemoBase.Files)
        {
            var bytes = new byte[100 + rng.Next(900)];
            rng.NextBytes(bytes);
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            contents[name] = bytes;
        }
        return contents;
    }

    [Fact]
    public void TheFilesAreThoseOfAHuggingFaceBaseWithItsPretrainRecord()
    {
        Assert.Equal(["config.json", "generation_config.json", "model.safetensors", "pretrain.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"],
            DemoBase.Files.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ABaseDirectoryIsCopiedFileByFile()
    {
        using var dir = new TempDir();
        var contents = WriteBase(dir["from"], seed: 1);
        File.WriteAllText(dir["from/notes.txt"], "not part of the base");
        DemoBase.CopyTo(dir["from"], dir["models/base"]);
        Assert.Equal(DemoBase.Files.Order(StringComparer.Ordinal), Directory.GetFiles(dir["models/base"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var (name, bytes) in contents)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir["models/base"], name)));
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("pretrain.json")]
    [InlineData("tokenizer_config.json")]
    public void ADirectoryMissingAFileIsRefusedNamingIt(string missing)
    {
        using var dir = new TempDir();
        WriteBase(dir["from"], seed: 2);
        File.Delete(Path.Combine(dir["from"], missing));
        var e = Assert.Throws<IrrException>(() => DemoBase.CopyTo(dir["from"], dir["to"]));
        Assert.Contains(missing, e.Message);
        Assert.Contains("is missing", e.Message);
        Assert.Contains(Path.GetFullPath(dir["from"]), e.Message);
    }

    [Fact]
    public void AMissingBaseDirectoryIsNamedAndNothingIsWritten()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<IrrException>(() => DemoBase.CopyTo(dir["nowhere"], dir["to"]));
        Assert.Contains("no such directory", e.Message);
        Assert.Contains(Path.GetFullPath(dir["nowhere"]), e.Message);
        Assert.False(Directory.Exists(dir["to"]));
        var (code, _, stderr) = Irr.Tests.Cli.CliRunner.Run("demo", "--base", dir["nowhere"], "-o", dir["out"]);
        Assert.Equal(2, code);
        Assert.Equal($"error: {Path.GetFullPath(dir["nowhere"])}: no such directory (the base: a directory written by irr demo pretrain)", stderr.Trim());
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void TheShippedBaseIsTheOneWhoseHashesTheRepositoryRecords()
    {
        // src/Irr/Demo/base/SHA256SUMS (sha256sum's format) records the files irr demo pretrain wrote; the library
        // must carry exactly those bytes, and the model must load as the Llama the demo aligns.
        Assert.True(DemoBase.Shipped, "this build carries no demo base (src/Irr/Demo/base)");
        string sums = Path.Combine(Irr.Tests.Text.Fixtures.RepoRoot, "src", "Irr", "Demo", "base", "SHA256SUMS");
        var expected = File.ReadAllLines(sums).Where(l => l.Length > 0)
            .Select(l => l.Split("  ", 2)).ToDictionary(p => p[1], p => p[0], StringComparer.Ordinal);
        Assert.Equal(DemoBase.Files.Order(StringComparer.Ordinal), expected.Keys.Order(StringComparer.Ordinal));
        using var dir = new TempDir();
        DemoBase.CopyTo(null, dir["base"]);
        foreach (var (name, hash) in expected)
        {
            using var stream = File.OpenRead(Path.Combine(dir["base"], name));
            Assert.True(hash == Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream)), $"{name} differs from SHA256SUMS");
        }
        var config = Irr.IO.ModelConfig.Load(Path.Combine(dir["base"], "config.json"));
        Assert.Equal("llama", config.Json["model_type"]!.GetValue<string>());
        var tokenizer = Irr.Text.PretrainedTokenizer.Load(dir["base"]);
        Assert.Equal(config.Json["vocab_size"]!.GetValue<int>(), tokenizer.Tokenizer.VocabSize);
    }
}
