using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// <see cref="TorchFile"/> against state dicts written by real PyTorch (Debian's python3-torch 1.13.1,
/// tests/fixtures/torch/make_state_dicts.py), and against hostile pickles. Not run in parallel with
/// other classes: the byte-flip test allocates, and SafetensorsFileTests measures allocations.
/// </summary>
[CollectionDefinition(nameof(TorchFileTests), DisableParallelization = true)]
[Collection(nameof(TorchFileTests))]
public class TorchFileTests
{
    private static string Fixture(string name) => Text.Fixtures.Local($"torch/state_dicts/{name}");

    /// <summary>Each dict in both of torch.save's layouts (NAME.pt zip, NAME.legacy.pt legacy), and the hand-laid legacy views.</summary>
    public static TheoryData<string, string> Fixtures => new()
    {
        { "dtypes", "" }, { "views", "" }, { "module", "" },
        { "dtypes", ".legacy" }, { "views", ".legacy" }, { "module", ".legacy" },
        { "legacy_views", "" },
        { "parameters", "" },
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ReadsWhatTorchWrote(string name, string layout)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixture(name + ".json")));
        using var file = TorchFile.Open(Fixture(name + layout + ".pt"));
        Assert.Equal(layout == ".legacy" || name.StartsWith("legacy") ? TorchFormat.Legacy : TorchFormat.Zip, file.Format);
        var expected = doc.RootElement.GetProperty("tensors");
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal), file.Tensors.Select(t => t.Name));
        foreach (var p in expected.EnumerateObject())
        {
            var info = file.Get(p.Name);
            Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), info.Shape);
            Assert.Equal(p.Value.GetProperty("stride").EnumerateArray().Select(e => e.GetInt64()), info.Strides);
            Assert.Equal(p.Value.GetProperty("storage_offset").GetInt64(), info.StorageOffset);
            Assert.Equal(p.Value.GetProperty("contiguous").GetBoolean(), info.IsContiguous);
            string dtype = p.Value.GetProperty("dtype").GetString()!;
            Assert.Equal(dtype switch
            {
                "float32" => TensorDType.F32, "float16" => TensorDType.F16, "bfloat16" => TensorDType.BF16, "float64" => TensorDType.F64,
                "int64" => TensorDType.I64, "bool" => TensorDType.BOOL, _ => throw new InvalidOperationException(dtype),
            }, info.DType);
            var values = p.Value.GetProperty("values");
            if (dtype.StartsWith("float") || dtype == "bfloat16")
            {
                // torch's float32 value, exactly (float64 narrows to float32 as .to(float32) does).
                Assert.Equal(values.EnumerateArray().Select(e => (float)e.GetDouble()), file.ReadSingle(p.Name));
            }
            else
            {
                var ex = Assert.Throws<IrrException>(() => file.ReadSingle(p.Name));
                Assert.Contains($"'{p.Name}' has dtype {info.DType}; a float weight is needed", ex.Message);
                if (info.DType == TensorDType.I64)
                    Assert.Equal(values.EnumerateArray().Select(e => e.GetInt64()), file.ReadInt64(p.Name));
                else
                    Assert.Equal(values.EnumerateArray().Select(e => (byte)e.GetInt64()), file.ReadBytes(info));
            }
        }
    }

    [Theory]
    [InlineData("views.pt")]
    [InlineData("views.legacy.pt")]
    public void ViewsShareOneStorage(string fixture)
    {
        using var file = TorchFile.Open(Fixture(fixture));
        Assert.Same(file.Get("m").Storage, file.Get("m.t").Storage);
        Assert.Same(file.Get("m").Storage, file.Get("tail").Storage);
        Assert.Equal(24, file.Get("tail").StorageOffset);
        Assert.False(file.Get("m.t").IsContiguous);
        // The transpose read back is the transpose of the matrix.
        float[] m = file.ReadSingle("m"), t = file.ReadSingle("m.t");
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 5; j++)
                Assert.Equal(m[i * 5 + j], t[j * 4 + i]);
    }

    [Fact]
    public void OpensThroughTensorFilesAndRefusesMissingTensors()
    {
        using var file = TensorFiles.Open(Fixture("module.pt"));
        Assert.IsType<TorchFile>(file);
        Assert.True(file.TryGetTensor("0.weight", out var dtype, out var shape));
        Assert.Equal(TensorDType.F32, dtype);
        Assert.Equal([3L, 4L], shape);
        Assert.False(file.TryGetTensor("2.weight", out _, out _));
        Assert.Contains("no tensor 'nope'", Assert.Throws<IrrException>(() => file.ReadSingle("nope")).Message);
    }

    // ---- hostile and broken archives ----

    /// <summary>A zip archive as torch.save lays it out, with the given pickle and storages.</summary>
    internal static string Archive(TempDir dir, byte[] pickle, string fileName = "x.pt", string? byteorder = null, params (string Key, byte[] Data)[] storages)
    {
        string path = dir[fileName];
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            void Add(string name, byte[] data)
            {
                using var s = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
            Add("data.pkl", pickle);
            if (byteorder is not null) Add("byteorder", Encoding.ASCII.GetBytes(byteorder));
            foreach (var (key, data) in storages) Add("data/" + key, data);
            Add("version", "3\n"u8.ToArray());
        }
        return path;
    }

    internal static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    public static TheoryData<string, string> Hostile(string marker) => new()
    {
        // protocol 0/2 GLOBAL of os.system (what pickle writes for os.system on Linux), called via REDUCE
        { "\u0080\u0002cposix\nsystem\nq\u0000X\u000c\u0000\u0000\u0000" + "touch MARKER".Replace("MARKER", marker) + "q\u0001\u0085q\u0002Rq\u0003.", "posix.system" },
        { "cos\nsystem\n(S'touch " + marker + "'\ntR.", "os.system" },
        { "cbuiltins\neval\n(S'__import__(\"os\").system(\"touch " + marker + "\")'\ntR.", "builtins.eval" },
        // protocol 4: a __reduce__ to subprocess.call written with STACK_GLOBAL and memoized names
        { "\u0080\u0004\u0095\u0030\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u008c\u000asubprocess\u0094\u008c\u0004call\u0094\u0093\u0094]\u0094(\u008c\u0005touch\u0094h\u0000e\u0085R.", "subprocess.call" },
        // INST (protocol 0 instance creation)
        { "(S'touch " + marker + "'\niposix\nsystem\n.", "posix.system" },
        // a state dict whose tensor rebuild is a different callable
        { "\u0080\u0002ccollections\nOrderedDict\n)R(X\u0001\u0000\u0000\u0000wctorch._utils\n_rebuild_qtensor\n)Ru.", "torch._utils._rebuild_qtensor" },
        // an allowed global's neighbour: the ClassDict Razorvine would otherwise build
        { "\u0080\u0002ctorch\nTensor\n)R.", "torch.Tensor" },
        { "\u0080\u0002c__builtin__\nset\n)R.", "__builtin__.set" },
    };

    [Fact]
    public void RefusesEveryOtherGlobalByNameWithoutEffect()
    {
        using var dir = new TempDir();
        string marker = dir["PWNED"];
        foreach (var row in Hostile(marker))
        {
            string pickle = (string)row[0], global = (string)row[1];
            string path = Archive(dir, Bytes(pickle));
            var ex = Assert.Throws<IrrException>(() => TorchFile.Open(path));
            Assert.Equal($"{path}: refuses the pickle global '{global}' (only a state dict's tensors are read)", ex.Message);
            var ex2 = Assert.Throws<IrrException>(() => TensorFiles.Open(path));
            Assert.Equal(ex.Message, ex2.Message);
            Assert.False(File.Exists(marker));
        }
    }

    [Fact]
    public void RefusesBigEndianArchivesAndNonStateDicts()
    {
        using var dir = new TempDir();
        byte[] empty = Bytes("\u0080\u0002ccollections\nOrderedDict\n)R.");
        using (var ok = TorchFile.Open(Archive(dir, empty, "ok.pt", byteorder: "little"))) Assert.Empty(ok.Tensors);
        Assert.Contains("byteorder 'big' is not supported", Assert.Throws<IrrException>(() => TorchFile.Open(Archive(dir, empty, "big.pt", byteorder: "big"))).Message);
        Assert.Contains("holds a list, not a state dict", Assert.Throws<IrrException>(() => TorchFile.Open(Archive(dir, Bytes("\u0080\u0002]."), "list.pt"))).Message);
        Assert.Contains("entry 'a' is an int", Assert.Throws<IrrException>(() => TorchFile.Open(Archive(dir, Bytes("\u0080\u0002}X\u0001\u0000\u0000\u0000aK\u0001s."), "int.pt"))).Message);
        // A view reaching past its storage.
        byte[] overrun = Bytes("\u0080\u0002ccollections\nOrderedDict\n)R(X\u0001\u0000\u0000\u0000wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0002tQK\u0001K\u0002\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRu.");
        string path = Archive(dir, overrun, "overrun.pt", null, ("0", new byte[8]));
        Assert.Contains("tensor 'w' reaches element 2 of storage '0', which has 2", Assert.Throws<IrrException>(() => TorchFile.Open(path)).Message);
        Assert.Equal($"{dir["legacy.pt"]}: magic number pickle is cut short (the file is truncated?)",
            Assert.Throws<IrrException>(() => TensorFiles.Open(Write(dir["legacy.pt"], Bytes("\u0080\u0002\u008a\u000a")))).Message);
    }

    // The first three pickles of a legacy file (magic number, protocol 1001, little-endian system info), as
    // pickle.dumps(..., protocol=2) writes them in torch/serialization.py's _legacy_save.
    internal const string LegacyHead = "\u0080\u0002\u008a\nl\u00fc\u009cF\u00f9 j\u00a8P\u0019.\u0080\u0002M\u00e9\u0003.\u0080\u0002}q\u0000(X\u0010\u0000\u0000\u0000protocol_versionq\u0001M\u00e9\u0003X\r\u0000\u0000\u0000little_endianq\u0002\u0088X\n\u0000\u0000\u0000type_sizesq\u0003}q\u0004(X\u0005\u0000\u0000\u0000shortq\u0005K\u0002X\u0003\u0000\u0000\u0000intq\u0006K\u0004X\u0004\u0000\u0000\u0000longq\u0007K\u0004uu.";

    [Fact]
    public void ReadsAndRefusesLegacyFilesAsTheirParts()
    {
        using var dir = new TempDir();
        const string emptyKeys = "\u0080\u0002]q\u0000.";
        // torch.save({}, f, _use_new_zipfile_serialization=False), byte for byte.
        using (var empty = TorchFile.Open(Write(dir["empty.pt"], Bytes(LegacyHead + "\u0080\u0002}q\u0000." + emptyKeys))))
        {
            Assert.Equal(TorchFormat.Legacy, empty.Format);
            Assert.Empty(empty.Tensors);
        }
        string marker = dir["PWNED"];
        foreach (var row in Hostile(marker))
        {
            string pickle = (string)row[0], global = (string)row[1];
            string path = Write(dir["hostile.pt"], Bytes(LegacyHead + pickle + emptyKeys));
            Assert.Equal($"{path}: refuses the pickle global '{global}' (only a state dict's tensors are read)", Assert.Throws<IrrException>(() => TorchFile.Open(path)).Message);
            Assert.False(File.Exists(marker));
        }
        string wrongMagic = Write(dir["magic.pt"], Bytes("\u0080\u0002K\u0007." + LegacyHead[15..] + "\u0080\u0002}q\u0000." + emptyKeys));
        Assert.Contains("a pickle without torch.save's magic number", Assert.Throws<IrrException>(() => TorchFile.Open(wrongMagic)).Message);
        // A storage record cut short, and one whose element count disagrees with the pickle.
        byte[] whole = File.ReadAllBytes(Fixture("module.legacy.pt"));
        string cut = Write(dir["cut.pt"], whole[..^3]);
        Assert.Contains("runs past the end of the file (truncated?)", Assert.Throws<IrrException>(() => TorchFile.Open(cut)).Message);
    }

    [Fact]
    public void RefusesWhatIsNoStateDictWithAHint()
    {
        string checkpoint = Fixture("checkpoint.pt"), module = Fixture("whole_module.pt");
        Assert.Equal($"{checkpoint}: entry 'state_dict' is a dict of tensors, not a tensor: a checkpoint that holds a state dict; save that dict alone (torch.save(checkpoint['state_dict'], …))",
            Assert.Throws<IrrException>(() => TorchFile.Open(checkpoint)).Message);
        Assert.Equal($"{module}: refuses the pickle global 'torch.nn.modules.container.Sequential' (a whole pickled model, not a state dict; save model.state_dict() instead)",
            Assert.Throws<IrrException>(() => TorchFile.Open(module)).Message);
        using var dir = new TempDir();
        Assert.Equal($"{dir["e.pth"]}: an empty file (neither a safetensors file nor a PyTorch state dict)",
            Assert.Throws<IrrException>(() => TensorFiles.Open(Write(dir["e.pth"], []))).Message);
        Assert.Equal($"{dir["junk.pth"]}: not a PyTorch file (neither a zip archive nor a pickle), nor a safetensors file",
            Assert.Throws<IrrException>(() => TensorFiles.Open(Write(dir["junk.pth"], Encoding.ASCII.GetBytes("hello, world")))).Message);
        byte[] whole = File.ReadAllBytes(Fixture("module.pt"));
        Assert.Equal($"{dir["cut.pt"]}: a zip archive without its central directory: the file is truncated (an unfinished download or copy?)",
            Assert.Throws<IrrException>(() => TensorFiles.Open(Write(dir["cut.pt"], whole[..(whole.Length / 2)]))).Message);
    }

    [Fact]
    public void RefusesCompressedStorages()
    {
        using var dir = new TempDir();
        string path = dir["deflated.pt"];
        using (var source = ZipFile.OpenRead(Fixture("module.pt")))
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
            foreach (var e in source.Entries)
            {
                using var from = e.Open();
                using var to = zip.CreateEntry(e.FullName, CompressionLevel.Optimal).Open();
                from.CopyTo(to);
            }
        Assert.Contains("storage '0' is compressed (module/data/0); torch.save stores storages uncompressed", Assert.Throws<IrrException>(() => TorchFile.Open(path)).Message);
    }

    private static string Write(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void OpenAndReadAll(string path)
    {
        using var file = TorchFile.Open(path);
        foreach (var t in file.Tensors) file.ReadBytes(t);
    }

    [Fact]
    public void RandomByteFlipsGiveACleanErrorOrARead()
    {
        using var dir = new TempDir();
        var rng = new Random(14);
        byte[] original = File.ReadAllBytes(Fixture("views.pt")), legacy = File.ReadAllBytes(Fixture("views.legacy.pt"));
        byte[] pickle;
        using (var zip = ZipFile.OpenRead(Fixture("views.pt")))
        using (var s = zip.GetEntry("views/data.pkl")!.Open())
        using (var ms = new MemoryStream())
        {
            s.CopyTo(ms);
            pickle = ms.ToArray();
        }
        byte[] storage0 = new byte[160];
        using (var zip = ZipFile.OpenRead(Fixture("views.pt")))
        using (var s = zip.GetEntry("views/data/0")!.Open()) s.ReadExactly(storage0);
        byte[] storage1 = new byte[30];
        using (var zip = ZipFile.OpenRead(Fixture("views.pt")))
        using (var s = zip.GetEntry("views/data/1")!.Open()) s.ReadExactly(storage1);

        int errors = 0, reads = 0;
        for (int round = 0; round < 600; round++)
        {
            string path;
            if (round % 3 == 2)
            {
                // Flips anywhere in a legacy file (pickles, storage records, data).
                var bytes = (byte[])legacy.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                path = Write(dir[$"legacy{round}.pt"], bytes);
            }
            else if (round % 3 == 0)
            {
                // Flips anywhere in the archive (zip structure, CRCs, pickle, data).
                var bytes = (byte[])original.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                path = Write(dir[$"flip{round}.pt"], bytes);
            }
            else
            {
                // Flips inside the pickle, re-zipped with valid CRCs so the unpickler sees them.
                var bytes = (byte[])pickle.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                path = Archive(dir, bytes, $"pkl{round}.pt", null, ("0", storage0), ("1", storage1));
            }
            try
            {
                OpenAndReadAll(path);
                reads++;
            }
            catch (IrrException ex)
            {
                Assert.StartsWith(path + ": ", ex.Message);
                Assert.DoesNotContain('\n', ex.Message);
                errors++;
            }
            File.Delete(path);
        }
        Assert.True(errors > 75 && reads > 0, $"{errors} errors, {reads} reads");
    }
}
