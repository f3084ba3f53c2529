using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary><c>irr convert</c> (<see cref="ConvertJob"/>) on the state dicts real PyTorch wrote (tests/fixtures/torch).</summary>
[Collection(nameof(TorchFileTests))]
public class ConvertTests
{
    private static string Fixture(string name) => Text.Fixtures.Local($"torch/state_dicts/{name}");

    public static TheoryData<string> Fixtures => new() { "dtypes", "views", "module", "dtypes.legacy", "views.legacy" };

    private static byte[] Raw(ITensorFile file, TensorEntry info)
    {
        using var ms = new MemoryStream();
        ((SafetensorsFile)file).CopyRawTo((TensorInfo)info, ms);
        return ms.ToArray();
    }

    // Every tensor of each source is in the output with its dtype, shape and bytes.
    private static void AssertSameTensors(IReadOnlyList<TorchFile> sources, Func<string, (ITensorFile File, TensorEntry Info)> locate, int outputCount)
    {
        Assert.Equal(sources.Sum(s => s.Tensors.Count), outputCount);
        foreach (var source in sources)
            foreach (var t in source.Tensors)
            {
                var (file, info) = locate(t.Name);
                Assert.Equal(t.DType, info.DType);
                Assert.Equal(t.Shape, info.Shape);
                Assert.Equal(source.ReadBytes(t), Raw(file, info));
            }
    }

    private static string Hash(string directory) =>
        string.Join("\n", Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal)
            .Select(f => Path.GetFileName(f) + " " + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ConvertsEachFixtureBitForBit(string name)
    {
        using var dir = new TempDir();
        string output = dir[name + ".safetensors"];
        var (code, _, err) = CliRunner.Run("convert", Fixture(name + ".pt"), "-o", output);
        Assert.True(code == 0, err);
        Assert.Equal([name + ".safetensors"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

        using var source = TorchFile.Open(Fixture(name + ".pt"));
        using var converted = SafetensorsFile.Open(output);
        Assert.Equal("pt", converted.Metadata["format"]);
        Assert.Single(converted.Metadata);
        AssertSameTensors([source], n => (converted, converted.Get(n)), converted.Tensors.Count);

        // And against the values torch itself wrote beside the fixture.
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixture(name.Replace(".legacy", "") + ".json")));
        foreach (var p in doc.RootElement.GetProperty("tensors").EnumerateObject())
        {
            var info = converted.Get(p.Name);
            Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), info.Shape);
            var values = p.Value.GetProperty("values").EnumerateArray().ToList();
            byte[] raw = Raw(converted, info);
            switch (p.Value.GetProperty("dtype").GetString())
            {
                case "float64":
                    Assert.Equal(TensorDType.F64, info.DType);
                    Assert.Equal(values.Select(e => e.GetDouble()), Enumerable.Range(0, values.Count).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(i * 8))));
                    break;
                case "float32" or "float16" or "bfloat16":
                    Assert.Equal(values.Select(e => (float)e.GetDouble()), converted.ReadSingle(p.Name));
                    break;
                case "int64":
                    Assert.Equal(TensorDType.I64, info.DType);
                    Assert.Equal(values.Select(e => e.GetInt64()), Enumerable.Range(0, values.Count).Select(i => BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(i * 8))));
                    break;
                case "bool":
                    Assert.Equal(TensorDType.BOOL, info.DType);
                    Assert.Equal(values.Select(e => (byte)(e.ValueKind == JsonValueKind.True || (e.ValueKind == JsonValueKind.Number && e.GetInt64() != 0) ? 1 : 0)), raw);
                    break;
                case var other:
                    throw new InvalidOperationException(other);
            }
        }
    }

    [Fact]
    public void ConvertsAModelDirectoryWithPytorchModelBin()
    {
        using var dir = new TempDir();
        string model = dir["model"];
        Directory.CreateDirectory(model);
        File.Copy(Fixture("module.pt"), Path.Combine(model, ModelDirectory.TorchWeightsFile));
        File.WriteAllText(Path.Combine(model, "config.json"), TinyModels.LlamaConfig);
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), "{}");
        string before = Hash(model);

        string output = dir["out"];
        var (code, _, err) = CliRunner.Run("convert", model, "-o", output);
        Assert.True(code == 0, err);
        Assert.Equal(before, Hash(model));
        Assert.Equal(["README.md", "config.json", "model.safetensors", "tokenizer_config.json"], Directory.EnumerateFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(TinyModels.LlamaConfig, File.ReadAllText(Path.Combine(output, "config.json")));
        var meta = HubCardRules.Check(File.ReadAllText(Path.Combine(output, "README.md")), "convert");
        Assert.False(meta.Children.ContainsKey(new YamlDotNet.RepresentationModel.YamlScalarNode("base_model_relation"))); // a format change is none of the four
        Assert.Equal("model", ((YamlDotNet.RepresentationModel.YamlScalarNode)meta[new YamlDotNet.RepresentationModel.YamlScalarNode("base_model")]).Value);
        // The input's own card is kept (it describes the same weights); --no-model-card writes none.
        File.WriteAllText(Path.Combine(model, "README.md"), "# the model\n");
        Assert.True(CliRunner.Run("convert", model, "-o", dir["kept"]).Item1 == 0);
        Assert.Equal("# the model\n", File.ReadAllText(Path.Combine(dir["kept"], "README.md")));
        File.Delete(Path.Combine(model, "README.md"));
        Assert.True(CliRunner.Run("convert", model, "-o", dir["plain"], "--no-model-card").Item1 == 0);
        Assert.False(File.Exists(Path.Combine(dir["plain"], "README.md")));

        using var converted = ModelDirectory.Open(output, validate: false);
        using var source = TorchFile.Open(Path.Combine(model, ModelDirectory.TorchWeightsFile));
        AssertSameTensors([source], converted.Locate, converted.TensorCount);
    }

    [Fact]
    public void ConvertsAShardedModelDirectoryIntoShards()
    {
        using var dir = new TempDir();
        string model = dir["model"];
        Directory.CreateDirectory(model);
        const string a = "pytorch_model-00001-of-00002.bin", b = "pytorch_model-00002-of-00002.bin";
        File.Copy(Fixture("dtypes.pt"), Path.Combine(model, a));
        File.Copy(Fixture("views.pt"), Path.Combine(model, b));
        File.WriteAllText(Path.Combine(model, "config.json"), TinyModels.LlamaConfig);
        var weightMap = new Dictionary<string, string>();
        using (var fa = TorchFile.Open(Path.Combine(model, a))) foreach (var t in fa.Tensors) weightMap[t.Name] = a;
        using (var fb = TorchFile.Open(Path.Combine(model, b))) foreach (var t in fb.Tensors) weightMap[t.Name] = b;
        File.WriteAllText(Path.Combine(model, ModelDirectory.TorchIndexFile), JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));
        string before = Hash(model);

        string output = dir["out"];
        var (code, _, err) = CliRunner.Run("convert", model, "-o", output, "--max-shard-size", "100B");
        Assert.True(code == 0, err);
        Assert.Equal(before, Hash(model));
        var names = Directory.EnumerateFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Contains("config.json", names);
        Assert.Contains(ModelDirectory.IndexFile, names);
        Assert.DoesNotContain(names, n => n!.EndsWith(".bin") || n.EndsWith(".bin.index.json"));
        var shards = names.Where(n => n!.EndsWith(".safetensors")).ToList();
        Assert.True(shards.Count > 2);
        Assert.All(shards, (s, i) => Assert.Equal($"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors", s));

        using var converted = ModelDirectory.Open(output, validate: false);
        Assert.Equal(shards.Count, converted.Shards.Count);
        using var sa = TorchFile.Open(Path.Combine(model, a));
        using var sb = TorchFile.Open(Path.Combine(model, b));
        AssertSameTensors([sa, sb], converted.Locate, converted.TensorCount);
    }

    [Fact]
    public void RefusesHostilePicklesWithNoOutput()
    {
        using var dir = new TempDir();
        string marker = dir["PWNED"];
        foreach (var row in TorchFileTests.Hostile(marker))
        {
            string pickle = (string)row[0], global = (string)row[1];
            string input = TorchFileTests.Archive(dir, TorchFileTests.Bytes(pickle), "evil.pt");
            var (code, _, err) = CliRunner.Run("convert", input, "-o", dir["evil.safetensors"]);
            Assert.Equal(2, code);
            Assert.Equal($"error: {input}: refuses the pickle global '{global}' (only a state dict's tensors are read)", err.TrimEnd('\n'));
            Assert.False(File.Exists(marker));
            Assert.Equal(["evil.pt"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

            // The same file as a model directory's weights.
            string model = dir["m"];
            Directory.CreateDirectory(model);
            File.Copy(input, Path.Combine(model, ModelDirectory.TorchWeightsFile));
            File.WriteAllText(Path.Combine(model, "config.json"), TinyModels.LlamaConfig);
            (code, _, err) = CliRunner.Run("convert", model, "-o", dir["out"]);
            Assert.Equal(2, code);
            Assert.Contains($"refuses the pickle global '{global}'", err);
            Assert.Equal(["evil.pt", "m"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Directory.Delete(model, recursive: true);
            File.Delete(input);
        }
    }

    [Fact]
    public void RefusesBadInputWithOneLine()
    {
        using var dir = new TempDir();
        var (code, _, err) = CliRunner.Run("convert", dir["nope.pt"], "-o", dir["x.safetensors"]);
        Assert.Equal(2, code);
        Assert.Equal($"error: convert: input {dir["nope.pt"]}: no such file or directory", err.TrimEnd('\n')); // named by its option

        Directory.CreateDirectory(dir["m"]);
        File.WriteAllText(dir["m/config.json"], TinyModels.LlamaConfig);
        (code, _, err) = CliRunner.Run("convert", dir["m"], "-o", dir["out"]);
        Assert.Equal(2, code);
        Assert.Contains("no pytorch_model.bin or pytorch_model.bin.index.json", err);

        // An index naming a tensor its shard lacks.
        File.Copy(Fixture("module.pt"), dir["m/pytorch_model-00001-of-00001.bin"]);
        File.WriteAllText(dir["m/" + ModelDirectory.TorchIndexFile], """{"weight_map": {"0.weight": "pytorch_model-00001-of-00001.bin", "ghost": "pytorch_model-00001-of-00001.bin"}}""");
        (code, _, err) = CliRunner.Run("convert", dir["m"], "-o", dir["out"]);
        Assert.Equal(2, code);
        Assert.Contains("says 'ghost' is in pytorch_model-00001-of-00001.bin, but that file has no such tensor", err);
        Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.False(Directory.Exists(dir["out"]));
        Assert.Equal(["m"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

        (code, _, err) = CliRunner.Run("convert", Fixture("module.pt"), "-o", dir["x.safetensors"], "--max-shard-size", "lots");
        Assert.Equal(2, code);
        Assert.Contains("max-shard-size must be a size", err);
    }

    [Fact]
    public void RefusesAnExistingOutputWithoutOverwrite()
    {
        using var dir = new TempDir();
        string output = dir["x.safetensors"];
        File.WriteAllText(output, "keep");
        var (code, _, err) = CliRunner.Run("convert", Fixture("module.pt"), "-o", output);
        Assert.Equal(2, code);
        Assert.Contains("exists", err);
        Assert.Equal($"error: {output}: exists (choose another output, or give --overwrite to replace it)", err.TrimEnd('\n')); // the one output policy (issue 25)
        Assert.Equal("keep", File.ReadAllText(output));
        (code, _, err) = CliRunner.Run("convert", Fixture("module.pt"), "-o", output, "--overwrite");
        Assert.True(code == 0, err);
        using (var converted = SafetensorsFile.Open(output)) Assert.Equal(4, converted.Tensors.Count);

        string model = dir["model"], outDir = dir["out"];
        Directory.CreateDirectory(model);
        File.Copy(Fixture("module.pt"), Path.Combine(model, ModelDirectory.TorchWeightsFile));
        File.WriteAllText(Path.Combine(model, "config.json"), TinyModels.LlamaConfig);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "keep");
        (code, _, err) = CliRunner.Run("convert", model, "-o", outDir);
        Assert.Equal(2, code);
        Assert.Contains("exists and is not empty", err);
        Assert.Contains("give --overwrite to replace it", err);
        Assert.Equal(["keep.txt"], Directory.EnumerateFiles(outDir).Select(Path.GetFileName));
        (code, _, err) = CliRunner.Run("convert", model, "-o", outDir, "--overwrite");
        Assert.True(code == 0, err);
        Assert.Equal(["README.md", "config.json", "model.safetensors"], Directory.EnumerateFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000L)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("100", 100L)]
    [InlineData("1.5kb", 1500L)]
    public void ParsesShardSizesAsTransformersDoes(string text, long bytes) => Assert.Equal(bytes, ConvertJob.ParseSize(text));
}
