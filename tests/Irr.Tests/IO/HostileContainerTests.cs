using System.Diagnostics;
using System.Text;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary>
/// Issue 24, "Small files, huge memory": hostile PyTorch pickles and safetensors files, generated (seeded) by the tests.
/// Each is refused with one <see cref="IrrException"/> naming the file (and the limit, with its variable), before the
/// memory it asks for is spent; the few runs through <see cref="IrrProcess"/> check the same under the process's own
/// limits (1 GB of data, 30 CPU seconds). The expected numbers are the documented budgets (docs/formats.md, "Pickles and
/// tensor containers") and the sizes built here, not the reader's output.
/// </summary>
public class HostileContainerTests
{
    private static string Fixture(string name) => Text.Fixtures.Local($"torch/state_dicts/{name}");

    private static PickledTensor T(string name, long numel, long offset, long[] shape, long[] strides, string key = "0") => new(name, key, numel, offset, shape, strides);

    private static string ZipOf(TempDir dir, string file, long numel, params PickledTensor[] tensors) =>
        HostilePickles.Zip(dir[file], HostilePickles.StateDict(false, tensors), false, ("0", HostilePickles.Counting((int)numel)));

    private static string LegacyOf(TempDir dir, string file, long numel, params PickledTensor[] tensors) =>
        HostilePickles.Legacy(dir[file], HostilePickles.StateDict(true, tensors), ("0", numel, HostilePickles.Counting((int)numel)));

    private static string Refusal(string path) => Assert.Throws<IrrException>(() => OpenAndReadAll(path)).Message;

    private static void OpenAndReadAll(string path)
    {
        using var file = TensorFiles.Open(path);
        foreach (var t in file.Tensors)
        {
            if (file is TorchFile torch) torch.ReadBytes((TorchTensorInfo)t);
            else if (t.DType.IsFloatingSupported() || t.DType == TensorDType.F64) file.ReadSingle(t, new float[t.ElementCount]);
        }
    }

    [Fact]
    public void TheGeneratorWritesStateDictsTorchReads()
    {
        // Storage 0..11 as float32: a [3, 4] matrix, its transpose (strides [1, 4]), a stepped slice from element 1
        // (x[1::2] of the flat storage: 1, 3, 5), and a tied copy of the matrix; hand-worked values.
        using var dir = new TempDir();
        PickledTensor[] tensors =
        [
            T("m", 12, 0, [3, 4], [4, 1]), T("m.t", 12, 0, [4, 3], [1, 4]), T("odd", 12, 1, [3], [2]), T("tied", 12, 0, [3, 4], [4, 1]),
            T("unsqueezed", 12, 0, [1, 4], [0, 1]), // a size-1 dimension reads nothing twice, whatever its stride
        ];
        foreach (string path in (string[])[ZipOf(dir, "z.pt", 12, tensors), LegacyOf(dir, "l.pt", 12, tensors)])
        {
            using var file = TorchFile.Open(path);
            Assert.Equal(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, file.ReadSingle("m.t"));
            Assert.Equal(new float[] { 1, 3, 5 }, file.ReadSingle("odd"));
            Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), file.ReadSingle("tied"));
            Assert.Equal(new float[] { 0, 1, 2, 3 }, file.ReadSingle("unsqueezed"));
            Assert.Same(file.Get("m").Storage, file.Get("tied").Storage);
        }
    }

    [Fact]
    public void ViewsThatRepeatStorageElementsAreRefusedByName()
    {
        using var dir = new TempDir();
        foreach (bool legacy in (bool[])[false, true])
        {
            string Make(string file, long numel, PickledTensor t) => legacy ? LegacyOf(dir, file, numel, t) : ZipOf(dir, file, numel, t);
            // The issue's case: 4 bytes of storage, a stride-0 view of 2^31 elements (an 8 GB tensor once materialised).
            string broadcast = Make("broadcast.pt", 1, T("w", 1, 0, [1L << 31], [0]));
            Assert.Equal($"{broadcast}: tensor 'w' [2147483648] has 2147483648 elements, more than the 1 of its storage '0' (an expanded or broadcast view; save a contiguous copy, tensor.contiguous())", Refusal(broadcast));
            // expand(4, 3) of a 3-element row: 12 elements from 3.
            string expanded = Make("expanded.pt", 3, T("w", 3, 0, [4, 3], [0, 1]));
            Assert.Contains("tensor 'w' [4, 3] has 12 elements, more than the 3 of its storage '0'", Refusal(expanded));
            // Fewer elements than the storage, but repeated: stride 0, and strides that interleave ([2, 2] with strides [1, 1]).
            string stride0 = Make("stride0.pt", 8, T("w", 8, 0, [4], [0]));
            Assert.Equal($"{stride0}: tensor 'w' [4] with strides [0] repeats its elements (stride 0 in dimension 0) (an expanded or broadcast view; save a contiguous copy, tensor.contiguous())", Refusal(stride0));
            string overlapping = Make("overlap.pt", 8, T("w", 8, 0, [2, 2], [1, 1]));
            Assert.Contains("tensor 'w' [2, 2] with strides [1, 1] reads elements of its storage more than once", Refusal(overlapping));
        }
    }

    [Fact]
    public void EverySizeProductIsOverflowChecked()
    {
        using var dir = new TempDir();
        // Legacy: 2^62 four-byte elements "fit" a 320-byte file when the product wraps to 0.
        string legacy = HostilePickles.Legacy(dir["huge.legacy.pt"], HostilePickles.StateDict(true, T("w", 1L << 62, 0, [1], [1])), ("0", 1L << 62, []));
        Assert.Equal($"{legacy}: storage '0' (4611686018427387904 F32 elements) runs past the end of the file (truncated?)", Refusal(legacy));
        string legacyMinus = HostilePickles.Legacy(dir["minus.legacy.pt"], HostilePickles.StateDict(true, T("w", -4, 0, [1], [1])), ("0", -4, []));
        Assert.Contains("storage '0' (-4 F32 elements) runs past the end", Refusal(legacyMinus));
        // Zip: the storage's element count against its member's bytes.
        string zip = HostilePickles.Zip(dir["huge.pt"], HostilePickles.StateDict(false, T("w", 1L << 62, 0, [1], [1])), false, ("0", new byte[4]));
        Assert.Contains("storage '0' should hold 4611686018427387904 F32 elements but archive/data/0 has 4 bytes", Refusal(zip));
        // Shapes, strides and offsets whose products leave int64.
        string shape = ZipOf(dir, "shape.pt", 4, T("w", 4, 0, [1L << 40, 1L << 40], [1, 1]));
        Assert.Equal($"{shape}: tensor 'w' has sizes or strides out of range", Refusal(shape));
        string stride = ZipOf(dir, "stride.pt", 4, T("w", 4, 0, [3], [1L << 62]));
        Assert.Equal($"{stride}: tensor 'w' has sizes or strides out of range", Refusal(stride));
        string offset = ZipOf(dir, "offset.pt", 4, T("w", 4, long.MaxValue, [2], [1]));
        Assert.Equal($"{offset}: tensor 'w' has sizes or strides out of range", Refusal(offset));
        string rank = ZipOf(dir, "rank.pt", 4, T("w", 4, 0, Enumerable.Repeat(1L, 65).ToArray(), new long[65]));
        Assert.Equal($"{rank}: tensor 'w': the number of dimensions (65) exceeds the limit of 64 (raise it with IRR_MAX_TENSOR_RANK=…)", Refusal(rank));
    }

    public static TheoryData<string, string, int, string, string> Floods => new()
    {
        // 1,000,001 EMPTY_DICTs appended to one list (each a ~300-byte Hashtable in Razorvine), the stack never deeper than 2.
        { "]", "}a", 1_000_001, "the number of objects the pickle builds exceeds the limit of 1,000,000", "IRR_MAX_PICKLE_OBJECTS" },
        // 100,001 EMPTY_DICTs left on the stack (the issue's 4.3 KB zip held 4 M of them: 1.16 GB).
        { "", "}", 100_001, "the pickle's stack depth exceeds the limit of 100,000", "IRR_MAX_PICKLE_STACK" },
        // MEMOIZE of one list, 1,000,001 times (the issue's 8 KB file took 1.09 GB).
        { "]", "\u0094", 1_000_001, "the number of pickle memo entries exceeds the limit of 1,000,000", "IRR_MAX_PICKLE_MEMO" },
        // MARK, POP_MARK: 10,000,002 opcodes that build nothing.
        { "", "(1", 5_000_001, "the number of pickle opcodes exceeds the limit of 10,000,000", "IRR_MAX_PICKLE_OPCODES" },
        // GET of one memoized list, 100,001 times: a stack of references.
        { "]q\u0000", "h\u0000", 100_001, "the pickle's stack depth exceeds the limit of 100,000", "IRR_MAX_PICKLE_STACK" },
        // 101 nested MARKs.
        { "", "(", 101, "the nesting of pickle marks exceeds the limit of 100", "IRR_MAX_PICKLE_NESTING" },
    };

    [Theory]
    [MemberData(nameof(Floods))]
    public void PickleFloodsAreRefusedBeforeUnpickling(string prefix, string body, int times, string message, string variable)
    {
        using var dir = new TempDir();
        byte[] pickle = HostilePickles.Flood(prefix, body, times);
        string zip = HostilePickles.Zip(dir["flood.pt"], pickle, deflate: true);
        Assert.True(new FileInfo(zip).Length < 64 << 10, "a small file");
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal($"{zip}: data.pkl: {message} (raise it with {variable}=…)", Refusal(zip));
        // What was read (the decompressed pickle, up to 10 MB) and scanned (the scan's memo of up to 1 M indices), not
        // what unpickling would have built.
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 8L * pickle.Length + (128 << 20), $"{allocated} bytes allocated");
        string legacy = dir["flood.legacy.pt"];
        File.WriteAllBytes(legacy, [.. Encoding.Latin1.GetBytes(TorchFileTests.LegacyHead), .. pickle, .. "\u0080\u0002]."u8.ToArray()]);
        Assert.Equal($"{legacy}: state dict pickle: {message} (raise it with {variable}=…)", Refusal(legacy));
    }

    [Fact]
    public void PicklesAndArchivesThatLieAboutTheirSizes()
    {
        using var dir = new TempDir();
        // A data.pkl of 65 MiB (zeros deflate ~1000 to 1): over the 64 MiB read.
        string bomb = HostilePickles.Zip(dir["bomb.pt"], new byte[65 << 20], deflate: true);
        Assert.Equal($"{bomb}: member 'archive/data.pkl' (68157440 bytes) exceeds the limit of 67,108,864 (raise it with IRR_MAX_PICKLE_BYTES=…)", Refusal(bomb));
        // A real pickle whose header claims 60 MB: more than deflate can make of its few hundred bytes.
        byte[] module;
        using (var z = System.IO.Compression.ZipFile.OpenRead(Fixture("module.pt")))
        using (var s = z.GetEntry("module/data.pkl")!.Open())
        using (var ms = new MemoryStream())
        {
            s.CopyTo(ms);
            module = ms.ToArray();
        }
        string liar = HostilePickles.Zip(dir["liar.pt"], module, deflate: true);
        HostilePickles.PatchDeclaredSize(liar, "archive/data.pkl", 60_000_000);
        Assert.Contains("member 'archive/data.pkl' claims 60000000 bytes from", Refusal(liar));
        // …and one that claims fewer bytes than it holds: the pickle read is cut short.
        string shy = HostilePickles.Zip(dir["shy.pt"], module, deflate: true);
        HostilePickles.PatchDeclaredSize(shy, "archive/data.pkl", 10);
        Assert.Equal($"{shy}: data.pkl is cut short (the file is truncated?)", Refusal(shy));
        // An integer of 5,000 digits (parsing is quadratic in its length; Python refuses more than 4,300).
        string digits = HostilePickles.Zip(dir["digits.pt"], HostilePickles.Flood("L" + new string('9', 5000) + "L\n", "", 0), deflate: true);
        Assert.Equal($"{digits}: data.pkl has an integer of more than 4300 digits (Python's limit for integer strings); not a state dict pickle", Refusal(digits));
    }

    [Fact]
    public void NumbersThatHashAlikeAreNoDictKeys()
    {
        // .NET hashes a long as its two halves xor-ed: k·(2^32 + 1) all hash to 0, so such keys make each insertion into
        // Razorvine's Hashtable walk all the others (10 batches of 40,000 took more than 30 s of CPU). No state dict has them.
        using var dir = new TempDir();
        var flood = new List<byte> { 0x80, 2, (byte)'}', (byte)'(' };
        for (long k = 1; k <= 40_000; k++)
        {
            flood.AddRange([0x8a, 8]);
            flood.AddRange(BitConverter.GetBytes(k * ((1L << 32) + 1)));
            flood.Add((byte)'N');
        }
        flood.AddRange("u."u8.ToArray());
        string path = HostilePickles.Zip(dir["hash.pt"], [.. flood], deflate: true);
        Assert.Equal($"{path}: data.pkl uses a number (an integer beyond 32 bits or a float) as a dict key or set element (the opcode at byte 440004); not a state dict pickle", Refusal(path));
        // SETITEM with a float key, DICT and FROZENSET of big integers: the same. 32-bit integer keys are hashed as
        // themselves (no two alike): read, and refused as no tensor names.
        foreach (string pickle in (string[])["}G\0\0\0\0\0\0\0\0Ns.", "(\u008a\u0001\u0005Nd.", "(\u008a\u0001\u0005\u0091."])
        {
            string other = HostilePickles.Zip(dir["other.pt"], Encoding.Latin1.GetBytes("\u0080\u0002" + pickle));
            Assert.Contains("uses a number (an integer beyond 32 bits or a float) as a dict key or set element", Refusal(other));
        }
        string ints = HostilePickles.Zip(dir["ints.pt"], Encoding.Latin1.GetBytes("\u0080\u0002}(K\u0001NK\u0002Nu."));
        Assert.Equal($"{ints}: a state dict key is an int, not a string", Refusal(ints));
    }

    [Fact]
    public void DeepStructuresNeedNoRecursion()
    {
        // A list nested 100,000 deep with a constant stack (each new list is appended to the one memoized before it):
        // refused as what it is, with no recursion into it.
        using var dir = new TempDir();
        var bytes = new List<byte>(Encoding.Latin1.GetBytes("\u0080\u0002]r\0\0\0\0"));
        for (int i = 0; i < 100_000; i++)
        {
            bytes.Add((byte)'j');
            bytes.AddRange(BitConverter.GetBytes(i));
            bytes.Add((byte)']');
            bytes.Add((byte)'r');
            bytes.AddRange(BitConverter.GetBytes(i + 1));
            bytes.AddRange("a0"u8.ToArray());
        }
        bytes.Add((byte)'.');
        string path = HostilePickles.Zip(dir["deep.pt"], [.. bytes], deflate: true);
        Assert.Equal($"{path}: holds a list, not a state dict (a dict of tensor name → tensor)", Refusal(path));
    }

    [Fact]
    public void RandomPicklesGiveAReadOrOneIrrException()
    {
        // 1,500 seeded opcode sequences, in both layouts: a clean refusal or a read, never another exception.
        using var dir = new TempDir();
        var rng = new Random(2424);
        int refused = 0;
        for (int round = 0; round < 1500; round++)
        {
            byte[] pickle = HostilePickles.Random(rng);
            string path = round % 2 == 0
                ? HostilePickles.Zip(dir["r.pt"], pickle, deflate: round % 4 == 0, ("0", HostilePickles.Counting(4)))
                : HostilePickles.Legacy(dir["r.legacy.pt"], pickle, ("0", 4, HostilePickles.Counting(4)));
            try
            {
                OpenAndReadAll(path);
            }
            catch (IrrException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                Assert.True(InputFile.IsPrintable(e.Message), e.Message);
                refused++;
            }
        }
        Assert.True(refused > 1000, $"{refused} refused");
    }

    // ---- safetensors ----

    private const string ValidHeader = """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}""";

    private static byte[] ValidData => [.. RawSafetensors.Floats(1, 2, 3, 4), .. RawSafetensors.Halves(0x3c00, 0x4000, 0x4200)];

    public static TheoryData<string, string> BadHeaders => new()
    {
        // A lone surrogate escape (serde_json, which the reference implementation parses with, refuses it).
        { """{"a\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "header holds a string that is not valid Unicode" },
        { """{"__metadata__":{"format":"\udc00"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "header holds a string that is not valid Unicode" },
        { """{"a":{"dtype":"F32\ud800","shape":[1],"data_offsets":[0,4]}}""", "header holds a string that is not valid Unicode" },
        // Control characters in a tensor name or a metadata key: refused, and shown escaped.
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "header names 'a' twice" },
        { """{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}""", "shape [4611686018427387904, 4…] has too many elements" },
        { """{"a":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,4]}}""", "tensor 'a': shape has too many elements" },
        { """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "shape entry 0 is not a non-negative integer" },
        { """{"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}}""", "shape entry 0 is not a non-negative integer" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":["\u001b",4]}}""", @"data_offsets [""\u001b"", 4] are not 0 ≤ begin ≤ end" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775807,9223372036854775807]}}""", "run past the 8-byte data section" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", "are not 0 ≤ begin ≤ end" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", "tensors 'a' [0, 4) and 'b' [2, 6) overlap" },
        { """{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}""", "the number of dimensions (65) exceeds the limit of 64 (raise it with IRR_MAX_TENSOR_RANK=…)" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void SafetensorsHeadersAreCheckedByName(string header, string message)
    {
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir["x.safetensors"], header, new byte[8]);
        string error = Assert.Throws<IrrException>(() => SafetensorsFile.Open(path)).Message;
        Assert.StartsWith(path + ": ", error);
        Assert.Contains(message, error);
        Assert.True(InputFile.IsPrintable(error), error);
    }

    [Fact]
    public void SafetensorsMutationsGiveAReadOrOneIrrException()
    {
        // A valid two-tensor file, then 1,500 seeded mutations: cuts, byte flips (mostly in the header), a rewritten
        // header length, and replaced JSON values (absurd shapes, offsets, dtypes, names).
        byte[] valid = RawSafetensors.Build(ValidHeader, ValidData);
        using var dir = new TempDir();
        string path = dir["m.safetensors"];
        File.WriteAllBytes(path, valid);
        using (var f = SafetensorsFile.Open(path)) Assert.Equal(new float[] { 1, 2, 3, 4 }, f.ReadSingle("a"));
        string[] values = ["-1", "0", "1", "4611686018427387904", "18446744073709551615", "1e400", "\"x\"", "null", "[]", "{}", "[0,0]", "[22,0]", "[0,9223372036854775807]", "\"\\ud800\"", "\"\\u0000\"", "\"BF16\"", "\"F64\"", "\"I64\"", "[2,2,2,2]"];
        var rng = new Random(24);
        int reads = 0, refused = 0;
        for (int round = 0; round < 1500; round++)
        {
            byte[] bytes;
            switch (round % 4)
            {
                case 0:
                    bytes = valid[..rng.Next(valid.Length)];
                    break;
                case 1:
                    bytes = (byte[])valid.Clone();
                    for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(rng.Next(4) == 0 ? bytes.Length : 8 + ValidHeader.Length)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 2:
                    bytes = (byte[])valid.Clone();
                    BitConverter.GetBytes(rng.Next(3) switch { 0 => rng.NextInt64(), 1 => (long)ValidHeader.Length + rng.Next(-3, 4), _ => rng.NextInt64(0, 1L << 40) }).CopyTo(bytes, 0);
                    break;
                default:
                    // Replace one number, string or array of the header by another value.
                    var tokens = System.Text.RegularExpressions.Regex.Matches(ValidHeader, @"\[[0-9,]*\]|""[A-Za-z0-9_]*""|[0-9]+");
                    var pick = tokens[rng.Next(tokens.Count)];
                    string header = ValidHeader[..pick.Index] + values[rng.Next(values.Length)] + ValidHeader[(pick.Index + pick.Length)..];
                    bytes = RawSafetensors.Build(header, ValidData);
                    break;
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                OpenAndReadAll(path);
                reads++;
            }
            catch (IrrException e)
            {
                Assert.StartsWith(path, e.Message);
                Assert.True(InputFile.IsPrintable(e.Message), e.Message);
                refused++;
            }
        }
        Assert.True(reads > 25 && refused > 750, $"{reads} read, {refused} refused");
    }

    [Fact]
    public void NamesFromContainersAreRefusedOrShownEscaped()
    {
        using var dir = new TempDir();
        // A state dict key with an ESC sequence and a newline is read, as torch reads it (and shown escaped: ControlCharacterTests).
        string torch = ZipOf(dir, "names.pt", 4, T("w\u001b[31m\nerror: forged", 4, 0, [4], [1]));
        Assert.Equal(["w\u001b[31m\nerror: forged"], TorchFile.Open(torch).Tensors.Select(t => t.Name));
        // A shard index and an adapter config with a lone surrogate escape (exit 70 before).
        string model = TinyModels.Create(dir["model"]);
        File.WriteAllText(Path.Combine(model, "model.safetensors.index.json"), """{"weight_map":{"a\ud800":"model.safetensors"}}""");
        File.Move(Path.Combine(model, "model.safetensors"), Path.Combine(model, "model-1.safetensors"));
        string indexError = Assert.Throws<IrrException>(() => ModelDirectory.Open(model)).Message;
        Assert.True(indexError.Contains("model.safetensors.index.json", StringComparison.Ordinal) && indexError.Contains("surrogate", StringComparison.Ordinal), indexError);
        string adapter = AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj\ud800"]}""", []);
        string adapterError = Assert.Throws<IrrException>(() => LoraAdapter.Open(adapter)).Message;
        Assert.True(adapterError.Contains("adapter_config.json", StringComparison.Ordinal) && adapterError.Contains("surrogate", StringComparison.Ordinal), adapterError);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'w', 0xFF, (byte)'a', (byte)'b' })] // not UTF-8: Python's pickle raises UnicodeDecodeError
    [InlineData(new byte[] { (byte)'w', 0xED, 0xA0, 0x80 })] // U+D800 as 'surrogatepass' writes it: no Unicode, safetensors cannot write it
    [InlineData(new byte[] { (byte)'w', 0xC0, 0x80, (byte)'b' })] // an overlong NUL, refused by every UTF-8 decoder
    public void ATensorNameThatIsNotUnicodeIsRefusedNotRenamed(byte[] name)
    {
        // Lib/pickle.py reads BINUNICODE as str(bytes, 'utf-8', 'surrogatepass'); before, these names were decoded with
        // U+FFFD and `irr convert` wrote the tensor as 'w\uFFFD\uFFFD\uFFFD', a name the source file never had.
        using var dir = new TempDir();
        byte[] pickle = HostilePickles.StateDict(false, T("wXYZ", 4, 0, [4], [1]));
        int at = pickle.AsSpan().IndexOf("wXYZ"u8);
        name.CopyTo(pickle, at);
        string path = HostilePickles.Zip(dir["bad.pt"], pickle, false, ("0", HostilePickles.Counting(4)));
        Assert.Equal($"{path}: data.pkl holds a string (at byte {at}) that is not valid UTF-8 or is a lone surrogate; not a state dict pickle", Refusal(path));
    }

    [Fact]
    public void MutatedModelWeightsGiveAModelOrOneIrrException()
    {
        // The tiny Llama's model.safetensors with one value of its header replaced (300 seeded rounds): opened as a model
        // directory (checked against config.json) and every tensor streamed, or one clean refusal.
        using var dir = new TempDir();
        string model = TinyModels.Create(dir["model"], dtype: TensorDType.F32);
        string weights = Path.Combine(model, "model.safetensors");
        byte[] original = File.ReadAllBytes(weights);
        int headerLength = (int)BitConverter.ToInt64(original);
        string header = Encoding.UTF8.GetString(original, 8, headerLength);
        byte[] data = original[(8 + headerLength)..];
        string[] values = ["0", "1", "3", "-1", "4611686018427387904", "[]", "[0]", "[1,1,1]", "[16,16]", "[65536,16]", "\"F16\"", "\"I8\"", "\"BOOL\"", "null", "\"\\u0000\"", "[0,0]", "[0,999999999]"];
        var tokens = System.Text.RegularExpressions.Regex.Matches(header, @"\[[0-9,]*\]|""[A-Z0-9]+""|[0-9]+");
        var rng = new Random(240);
        int opened = 0, refused = 0;
        for (int round = 0; round < 300; round++)
        {
            var pick = tokens[rng.Next(tokens.Count)];
            File.WriteAllBytes(weights, RawSafetensors.Build(header[..pick.Index] + values[rng.Next(values.Length)] + header[(pick.Index + pick.Length)..], data));
            try
            {
                using var m = ModelDirectory.Open(model);
                foreach (var t in m.Tensors) m.Locate(t.Name).File.ReadSingle(t, new float[t.ElementCount]);
                opened++;
            }
            catch (IrrException e)
            {
                Assert.True(InputFile.IsPrintable(e.Message), e.Message);
                refused++;
            }
        }
        Assert.True(refused > 150, $"{opened} opened, {refused} refused");
    }

    // ---- non-regular files ----

    private static string Fifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    // Runs a read that must refuse at once; a read that blocked on a FIFO fails the test after a minute instead of hanging it.
    private static string RefusedWithoutBlocking(Action read)
    {
        var task = Task.Run(() => Assert.Throws<IrrException>(read).Message);
        Assert.True(task.Wait(TimeSpan.FromSeconds(60)), "the read blocked");
        return task.Result;
    }

    [Fact]
    public void NonRegularFilesAreRefusedBeforeTheyAreOpened()
    {
        using var dir = new TempDir();
        string fifo = Fifo(dir["pipe.safetensors"]);
        Assert.Equal($"{fifo}: not a regular file (a FIFO)", RefusedWithoutBlocking(() => InputFile.RequireRegular(fifo)));
        Assert.Equal("/dev/null: not a regular file (a character device)", RefusedWithoutBlocking(() => InputFile.RequireRegular("/dev/null")));
        Assert.Equal($"{dir.Path}: not a regular file (a directory)", RefusedWithoutBlocking(() => InputFile.RequireRegular(dir.Path)));
        InputFile.RequireRegular(dir["missing"]); // left to the open that follows to report
        // A symbolic link to a regular file (the Hugging Face cache's snapshots) is read; one to a FIFO is not.
        string blob = RawSafetensors.Write(dir["blob"], ValidHeader, ValidData);
        File.CreateSymbolicLink(dir["model.safetensors"], blob);
        using (var f = SafetensorsFile.Open(dir["model.safetensors"])) Assert.Equal(2, f.Tensors.Count);
        File.CreateSymbolicLink(dir["link.pt"], fifo);
        Assert.Equal($"{dir["link.pt"]}: not a regular file (a FIFO)", RefusedWithoutBlocking(() => TensorFiles.Open(dir["link.pt"])));
        // Every reader of a file a model, adapter, data set or recipe brings.
        Action[] readers =
        [
            () => SafetensorsFile.Open(fifo), () => TorchFile.Open(fifo), () => TensorFiles.Open(fifo),
            () => ModelConfig.Load(fifo), () => JsonFiles.ReadText(fifo), () => Irr.Text.Tokenizer.Load(fifo),
            () => Irr.Data.DataFile.Read(fifo), () => Irr.Jobs.Recipe.Load(fifo),
        ];
        foreach (var read in readers) Assert.Equal($"{fifo}: not a regular file (a FIFO)", RefusedWithoutBlocking(read));
    }

    [Fact]
    public void AnOutputIsNeverRenamedOverADeviceOrAFifo()
    {
        // As root, a rename over /dev/null replaces the device with a regular file, for every process on the machine.
        using var dir = new TempDir();
        string fifo = Fifo(dir["out.json"]);
        foreach (string target in new[] { "/dev/null", fifo })
        {
            var e = Assert.Throws<IrrException>(() => AtomicFile.WriteText(target, "x"));
            Assert.StartsWith($"{target}: not a regular file (", e.Message);
            Assert.Throws<IrrException>(() => OutputPolicy.RequireNewFile(target, overwrite: true));
        }
        Assert.Equal("/dev/null: not a regular file (a character device); irr writes an output by renaming a new file over it, which would replace it",
            Assert.Throws<IrrException>(() => OutputPolicy.RequireNewFile("/dev/null", overwrite: true)).Message);
        Assert.Empty(Directory.GetFiles(dir.Path, ".*")); // no temporary left beside the FIFO
    }

    // ---- through the process's own limits ----

    [Fact]
    public void TheIssuesCasesEndInOneLineUnderTheProcessLimits()
    {
        using var dir = new TempDir();
        // 4 M EMPTY_DICTs in a deflated data.pkl (~4 KB): refused by the stack budget, not after 1.16 GB.
        string dicts = HostilePickles.Zip(dir["dicts.pt"], HostilePickles.Flood("", "}", 4_000_000), deflate: true);
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", dicts]), "dicts.pt", "IRR_MAX_PICKLE_STACK");
        // MEMOIZE, 8 M times.
        string memo = HostilePickles.Zip(dir["memo.pt"], HostilePickles.Flood("]", "\u0094", 8_000_000), deflate: true);
        IrrProcess.AssertOneLineError(IrrProcess.Run(["convert", memo, "-o", dir["memo.safetensors"]]), "memo.pt", "IRR_MAX_PICKLE_MEMO");
        // Raising the budgets lets the same file be scanned further: the next budget (or the runtime's memory) is what stops it.
        var raised = IrrProcess.Run(["inspect", dicts], env: new Dictionary<string, string> { ["IRR_MAX_PICKLE_STACK"] = "5000000" });
        IrrProcess.AssertOneLineError(raised, "dicts.pt", "the number of objects the pickle builds exceeds the limit of 1,000,000 (raise it with IRR_MAX_PICKLE_OBJECTS=…)");
        // A 512-byte stride-0 view that convert would have written as 1 GB, and a 2·10⁹-element one: refused, nothing written.
        foreach (long n in (long[])[1L << 28, 2_000_000_000])
        {
            string view = ZipOf(dir, $"view{n}.pt", 1, T("w", 1, 0, [n], [0]));
            string output = dir[$"view{n}.safetensors"];
            IrrProcess.AssertOneLineError(IrrProcess.Run(["convert", view, "-o", output]), $"view{n}.pt", "tensor 'w'", "expanded or broadcast view");
            Assert.False(File.Exists(output));
        }
        // The legacy format's 2^62 elements in a small file: inspect and convert both refuse it.
        string legacy = HostilePickles.Legacy(dir["huge.legacy.pt"], HostilePickles.StateDict(true, T("w", 1L << 62, 0, [1L << 62], [1])), ("0", 1L << 62, []));
        Assert.True(new FileInfo(legacy).Length < 1024);
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", legacy]), "huge.legacy.pt", "runs past the end");
        IrrProcess.AssertOneLineError(IrrProcess.Run(["convert", legacy, "-o", dir["huge.safetensors"]]), "huge.legacy.pt", "runs past the end");
        Assert.False(File.Exists(dir["huge.safetensors"]));
        // A lone surrogate in a safetensors name (exit 70 before) is refused; an ESC sequence in one is read, as the safetensors library reads it, and shown escaped.
        string surrogate = RawSafetensors.Write(dir["surrogate.safetensors"], """{"a\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[4]);
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", surrogate]), "surrogate.safetensors", "not valid Unicode");
        string escape = RawSafetensors.Write(dir["escape.safetensors"], """{"a\u001b]0;pwned\u0007\nerror: x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[4]);
        var shown = IrrProcess.Run(["inspect", escape, "--tensors"]);
        Assert.True(shown.Code == 0, shown.Err);
        IrrProcess.AssertNoControlCharacters(shown.Out + shown.Err);
        Assert.Contains(@"a\x1b]0;pwned\x07\nerror: x", shown.Out);
    }

    [Fact]
    public void AFifoAnywhereInAModelOrAdapterIsRefusedAtOnce()
    {
        // Each run would block for ever at open (the wall bound of 60 s ends it, and fails the test).
        using var dir = new TempDir();
        string model = TinyModels.Create(dir["model"]);
        File.Delete(Path.Combine(model, "model.safetensors"));
        Fifo(Path.Combine(model, "model.safetensors"));
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", model], wallSeconds: 60), "model.safetensors: not a regular file (a FIFO)");
        string configFifo = TinyModels.Create(dir["config"]);
        File.Delete(Path.Combine(configFifo, "config.json"));
        Fifo(Path.Combine(configFifo, "config.json"));
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", configFifo], wallSeconds: 60), "config.json: not a regular file (a FIFO)");
        string adapter = dir["adapter"];
        Directory.CreateDirectory(adapter);
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"]}""");
        Fifo(Path.Combine(adapter, "adapter_model.safetensors"));
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", adapter], wallSeconds: 60), "adapter_model.safetensors: not a regular file (a FIFO)");
        // A FIFO among the files convert copies beside the weights.
        string bin = dir["llama-bin"];
        Directory.CreateDirectory(bin);
        foreach (string f in Directory.EnumerateFiles(Text.Fixtures.Local("torch/models/llama-bin"))) File.Copy(f, Path.Combine(bin, Path.GetFileName(f)));
        File.Delete(Path.Combine(bin, "tokenizer.json"));
        Fifo(Path.Combine(bin, "tokenizer.json"));
        IrrProcess.AssertOneLineError(IrrProcess.Run(["convert", bin, "-o", dir["converted"]], wallSeconds: 60), "tokenizer.json: not a regular file (a FIFO)");
        Assert.False(Directory.Exists(dir["converted"]));
        string pt = Fifo(dir["weights.pt"]);
        IrrProcess.AssertOneLineError(IrrProcess.Run(["convert", pt, "-o", dir["weights.safetensors"]], wallSeconds: 60), "weights.pt: not a regular file (a FIFO)");
    }

    [Fact]
    public void RealFilesStillLoad()
    {
        // Every torch fixture that holds a state dict, in both layouts, and the demo's base model.
        foreach (string name in (string[])["views.pt", "views.legacy.pt", "legacy_views.pt", "dtypes.pt", "dtypes.legacy.pt", "module.pt", "module.legacy.pt", "parameters.pt", "peft_ddp.pt", "compiled_inner.pt", "chat_sv_peft.pt"])
            OpenAndReadAll(Fixture(name));
        foreach (string bin in Directory.EnumerateFiles(Text.Fixtures.Local("torch/models"), "*.bin", SearchOption.AllDirectories))
            OpenAndReadAll(bin);
        if (!Irr.Demo.DemoBase.Shipped) return;
        using var dir = new TempDir();
        string demo = dir["base"];
        Irr.Demo.DemoBase.CopyTo(null, demo);
        using var model = ModelDirectory.Open(demo);
        foreach (var t in model.Tensors) model.Locate(t.Name).File.ReadSingle(t, new float[t.ElementCount]);
        Assert.NotNull(Irr.Text.Tokenizer.Load(Path.Combine(demo, "tokenizer.json")));
    }
}
