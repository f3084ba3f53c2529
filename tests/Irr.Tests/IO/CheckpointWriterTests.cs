using System.Buffers.Binary;
using System.Text.Json;
using Irr.IO;
using Irr.Tensors;

namespace Irr.Tests.IO;

public class CheckpointWriterTests
{
    [Fact]
    public void SingleFileLayoutIsTheSafetensorsFormat()
    {
        // Check the bytes by hand: length prefix, JSON header padded with spaces to 8 bytes,
        // metadata {"format":"pt"}, contiguous offsets in writing order, data little-endian.
        using var dir = new TempDir();
        string target = dir["out"];
        using (var output = OutputDirectory.Create(target, []))
        {
            using (var w = CheckpointWriter.Create(output, [new TensorSpec("a", TensorDType.F32, [2]), new TensorSpec("b", TensorDType.BF16, [3])]))
            {
                w.Write("a", [1.5f, -2f]);
                w.Write("b", [1f, 0.5f, 3f]);
                w.Complete();
            }
            output.Commit();
        }
        Assert.Equal(["model.safetensors"], Directory.GetFiles(target).Select(Path.GetFileName));
        var bytes = File.ReadAllBytes(Path.Combine(target, "model.safetensors"));
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, n);
        Assert.Equal(header.TrimEnd(' ').Length, header.TrimEnd().Length);
        using var doc = JsonDocument.Parse(header);
        Assert.Equal("pt", doc.RootElement.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("[0,8]", doc.RootElement.GetProperty("a").GetProperty("data_offsets").GetRawText());
        Assert.Equal("[8,14]", doc.RootElement.GetProperty("b").GetProperty("data_offsets").GetRawText());
        Assert.Equal("BF16", doc.RootElement.GetProperty("b").GetProperty("dtype").GetString());
        var data = bytes.AsSpan(8 + n);
        Assert.Equal(14, data.Length);
        Assert.Equal(1.5f, BinaryPrimitives.ReadSingleLittleEndian(data));
        Assert.Equal(-2f, BinaryPrimitives.ReadSingleLittleEndian(data[4..]));
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x00, 0x3F, 0x40, 0x40 }, data[8..].ToArray()); // bf16 1, 0.5, 3
    }

    [Fact]
    public void ShardsAreCutInOrderAtTheLimit()
    {
        TensorSpec T(string name, long bytes) => new(name, TensorDType.F32, [bytes / 4]);
        var plan = CheckpointWriter.PlanShards([T("a", 400), T("b", 400), T("c", 400), T("big", 2000), T("d", 100)], 800);
        Assert.Equal([["a", "b"], ["c"], ["big"], ["d"]], plan.Select(s => s.Select(t => t.Name).ToArray()).ToArray());
    }

    [Fact]
    public void ShardedRoundTripIsBitIdentical()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        var specs = new List<TensorSpec>();
        var raw = new Dictionary<string, byte[]>();
        for (int i = 0; i < 12; i++)
        {
            var dtype = (TensorDType)new[] { TensorDType.F32, TensorDType.BF16, TensorDType.F16 }[i % 3];
            var spec = new TensorSpec($"t.{i}", dtype, [1 + rng.Next(40), 1 + rng.Next(30)]);
            specs.Add(spec);
            var bytes = new byte[spec.ByteLength];
            rng.NextBytes(bytes);
            raw[spec.Name] = bytes;
        }
        string target = dir["sharded"];
        using (var output = OutputDirectory.Create(target, []))
        {
            using (var w = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions { MaxShardBytes = 3000 }))
            {
                foreach (var s in specs) w.WriteRaw(s.Name, raw[s.Name]);
                Assert.True(w.FileNames.Count >= 3, $"{w.FileNames.Count} shards");
                w.Complete();
            }
            output.Commit();
        }

        // The index as transformers writes it: total_size and a sorted weight_map.
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(target, "model.safetensors.index.json")));
        Assert.Equal(specs.Sum(s => s.ByteLength), index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToList();
        Assert.Equal(map.Select(p => p.Name).Order(StringComparer.Ordinal), map.Select(p => p.Name));
        int shards = map.Select(p => p.Value.GetString()).Distinct().Count();
        Assert.All(map, p => Assert.Matches($"^model-0000[1-9]-of-0000{shards}\\.safetensors$", p.Value.GetString()!));

        // Every tensor reads back with the same bytes, dtype and shape, and from the shard the index names.
        foreach (var p in map)
        {
            using var file = SafetensorsFile.Open(Path.Combine(target, p.Value.GetString()!));
            var info = file.Get(p.Name);
            var spec = specs.Single(s => s.Name == p.Name);
            Assert.Equal(spec.DType, info.DType);
            Assert.Equal(spec.Shape, info.Shape);
            using var ms = new MemoryStream();
            file.CopyRawTo(info, ms);
            Assert.Equal(raw[p.Name], ms.ToArray());
        }
    }

    [Fact]
    public void FloatWritesRoundToTheStorageTypeAndReadBack()
    {
        using var dir = new TempDir();
        float[] values = [1f, 1.00390625f /* bf16 tie: rounds to 1 */, 1.01171875f /* tie: rounds up to 1.015625 */, -3.3f];
        string target = dir["f"];
        using (var output = OutputDirectory.Create(target, []))
        {
            using (var w = CheckpointWriter.Create(output, [new TensorSpec("x", TensorDType.BF16, [4]), new TensorSpec("y", TensorDType.F32, [4])]))
            {
                w.Write("x", values);
                w.Write("y", values);
                w.Complete();
            }
            output.Commit();
        }
        using var file = SafetensorsFile.Open(Path.Combine(target, "model.safetensors"));
        Assert.Equal([1f, 1f, 1.015625f, BFloat16.ToSingle(BFloat16.FromSingle(-3.3f))], file.ReadSingle("x"));
        Assert.Equal(values, file.ReadSingle("y"));
    }

    [Fact]
    public void AFailureMidWayLeavesNothingBehind()
    {
        using var dir = new TempDir();
        string target = dir["half"];
        var ex = Assert.Throws<InvalidOperationException>((Action)(() =>
        {
            using var output = OutputDirectory.Create(target, []);
            using var w = CheckpointWriter.Create(output, [new TensorSpec("a", TensorDType.F32, [2]), new TensorSpec("b", TensorDType.F32, [2])]);
            w.Write("a", [1f, 2f]);
            throw new InvalidOperationException("simulated crash while producing 'b'");
        }));
        Assert.Contains("simulated", ex.Message);
        Assert.False(Directory.Exists(target));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path)); // the temporary directory is gone too
    }

    [Fact]
    public void WritesMustFollowThePlan()
    {
        using var dir = new TempDir();
        using var output = OutputDirectory.Create(dir["p"], []);
        using var w = CheckpointWriter.Create(output, [new TensorSpec("a", TensorDType.F32, [2]), new TensorSpec("b", TensorDType.F32, [2])]);
        Assert.Throws<InvalidOperationException>(() => w.Write("b", [1f, 2f]));
        Assert.Throws<ArgumentException>(() => w.Write("a", [1f, 2f, 3f]));
        w.Write("a", [1f, 2f]);
        Assert.Throws<InvalidOperationException>(() => w.Complete());
    }

    [Fact]
    public void RefusesToWriteIntoOrOverAnInput()
    {
        using var dir = new TempDir();
        string model = TinyModels.Create(dir["model"]);
        Assert.Contains("refusing to write into the input model directory", Assert.Throws<IrrException>(() => OutputDirectory.Create(model, [model])).Message);
        Assert.Contains("refusing to write into", Assert.Throws<IrrException>(() => OutputDirectory.Create(Path.Combine(model, "sub"), [model])).Message);
        Assert.Contains("refusing to write over", Assert.Throws<IrrException>(() => OutputDirectory.Create(dir.Path, [model], overwrite: true)).Message);
        // Another spelling of the same directory: a symbolic link to it.
        string link = dir["link"];
        Directory.CreateSymbolicLink(link, model);
        Assert.Contains("refusing", Assert.Throws<IrrException>(() => OutputDirectory.Create(link, [model])).Message);
        Assert.Contains("refusing", Assert.Throws<IrrException>(() => OutputDirectory.Create(model + "/./", [link])).Message);
        Assert.True(File.Exists(Path.Combine(model, "model.safetensors"))); // untouched
    }

    [Fact]
    public void ExistingOutputIsReplacedOnlyWhenAllowed()
    {
        using var dir = new TempDir();
        string target = dir["out"];
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "old.txt"), "old");
        Assert.Contains("exists and is not empty", Assert.Throws<IrrException>(() => OutputDirectory.Create(target, [])).Message);
        using (var output = OutputDirectory.Create(target, [], overwrite: true))
        {
            File.WriteAllText(output.PathOf("new.txt"), "new");
            Assert.True(File.Exists(Path.Combine(target, "old.txt"))); // nothing replaced before the commit
            output.Commit();
        }
        Assert.Equal(["new.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path)); // no temporary or backup left
    }
}
