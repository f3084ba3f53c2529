using System.Buffers.Binary;
using System.Text;
using Irr.IO;

namespace Irr.Tests.IO;

public class SafetensorsFileTests
{
    // A file built byte by byte: F32 [2, 3], BF16 [4] and F16 [2], with metadata.
    // bf16 bits: 0x3F80 = 1, 0xC000 = −2, 0x3E00 = 0.125, 0x7F80 = +∞.  f16 bits: 0x3C00 = 1, 0xB800 = −0.5.
    private static string HandBuilt(TempDir dir)
    {
        var data = new List<byte>();
        data.AddRange(RawSafetensors.Floats(1, 2, 3, 4, 5, 6));          // [0, 24)
        data.AddRange(RawSafetensors.Halves(0x3F80, 0xC000, 0x3E00, 0x7F80)); // [24, 32)
        data.AddRange(RawSafetensors.Halves(0x3C00, 0xB800));             // [32, 36)
        string header = """
            {"__metadata__":{"format":"pt","note":"hand"},
             "w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
             "b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},
             "h":{"dtype":"F16","shape":[2,1],"data_offsets":[32,36]}}
            """;
        return RawSafetensors.Write(dir["hand.safetensors"], header, data.ToArray());
    }

    [Fact]
    public void ReadsAHandBuiltFile()
    {
        using var dir = new TempDir();
        using var file = SafetensorsFile.Open(HandBuilt(dir));
        Assert.Equal(["w", "b", "h"], file.Tensors.Select(t => t.Name));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("hand", file.Metadata["note"]);
        var w = file.Get("w");
        Assert.Equal(TensorDType.F32, w.DType);
        Assert.Equal([2L, 3L], w.Shape);
        Assert.Equal(6, w.ElementCount);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], file.ReadSingle("w"));
        Assert.Equal([1f, -2f, 0.125f, float.PositiveInfinity], file.ReadSingle("b"));
        Assert.Equal([1f, -0.5f], file.ReadSingle("h"));
    }

    [Fact]
    public void ReadsARowRange()
    {
        using var dir = new TempDir();
        using var file = SafetensorsFile.Open(HandBuilt(dir));
        var row = new float[3];
        file.ReadRowsSingle(file.Get("w"), 1, 1, row);
        Assert.Equal([4f, 5f, 6f], row);
        var rows = new float[2];
        file.ReadRowsSingle(file.Get("b"), 2, 2, rows);
        Assert.Equal([0.125f, float.PositiveInfinity], rows);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadRowsSingle(file.Get("w"), 1, 2, new float[6]));
    }

    [Fact]
    public void OpeningReadsOnlyTheHeader()
    {
        // A header claiming 2 GB of data in a file that is sparse (holes read as zeros): opening
        // must not touch the data, so it is instant and allocates nothing of that size.
        using var dir = new TempDir();
        string path = dir["big.safetensors"];
        string header = """{"big":{"dtype":"BF16","shape":[1073741824],"data_offsets":[0,2147483648]}}""";
        File.WriteAllBytes(path, RawSafetensors.Build(header, []));
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length + 2147483648L);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        using var file = SafetensorsFile.Open(path);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(1073741824L, file.Get("big").ElementCount);
        Assert.True(allocated < 1_000_000, $"opening allocated {allocated} bytes");
    }

    // ---- bad input: each gets a one-line IrrException naming the file (and tensor) ----------

    private static IrrException OpenFails(TempDir dir, byte[] bytes)
    {
        string path = dir["bad.safetensors"];
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<IrrException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.StartsWith(path + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void TruncatedFile()
    {
        using var dir = new TempDir();
        Assert.Contains("shorter than the 8-byte header length", OpenFails(dir, [1, 2, 3]).Message);
        // Data section cut short: the offsets run past the end.
        var whole = RawSafetensors.Build("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", RawSafetensors.Floats(1, 2, 3, 4));
        var e = OpenFails(dir, whole[..^5]);
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("run past", e.Message);
    }

    [Fact]
    public void HeaderLengthLargerThanTheFile()
    {
        using var dir = new TempDir();
        var bytes = RawSafetensors.Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        Assert.Contains("runs past the end", OpenFails(dir, bytes).Message);
    }

    [Fact]
    public void AbsurdHeaderLengthIsRejectedBeforeReading()
    {
        using var dir = new TempDir();
        // A sparse file big enough to hold the claimed header: only the 100 MB rule can stop it.
        string path = dir["huge.safetensors"];
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, 100_000_001);
        File.WriteAllBytes(path, prefix);
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(8 + 100_000_001L + 16);
        var e = Assert.Throws<IrrException>(() => SafetensorsFile.Open(path));
        Assert.Equal($"{path}: the header length of 100000001 bytes (corrupt or not a safetensors file?) exceeds the limit of 100,000,000 (raise it with IRR_MAX_SAFETENSORS_HEADER=…)", e.Message);
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, ulong.MaxValue);
        Assert.Contains("exceeds the limit of 100,000,000 (raise it with IRR_MAX_SAFETENSORS_HEADER=…)", OpenFails(dir, prefix).Message);
    }

    [Fact]
    public void BrokenJson()
    {
        using var dir = new TempDir();
        Assert.Contains("not valid JSON", OpenFails(dir, RawSafetensors.Build("""{"w":{"dtype":"F32",""", [])).Message);
        Assert.Contains("not an object", OpenFails(dir, RawSafetensors.Build("[1,2]", [])).Message);
        Assert.Contains("\"shape\"", OpenFails(dir, RawSafetensors.Build("""{"w":{"dtype":"F32","data_offsets":[0,0]}}""", [])).Message);
        Assert.Contains("twice", OpenFails(dir, RawSafetensors.Build("""{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}""", [])).Message);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        using var dir = new TempDir();
        string header = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""";
        var e = OpenFails(dir, RawSafetensors.Build(header, new byte[12]));
        Assert.Contains("'a'", e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void OutOfRangeAndInconsistentOffsets()
    {
        using var dir = new TempDir();
        Assert.Contains("run past", OpenFails(dir, RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", new byte[12])).Message);
        Assert.Contains("0 ≤ begin ≤ end", OpenFails(dir, RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", new byte[12])).Message);
        Assert.Contains("0 ≤ begin ≤ end", OpenFails(dir, RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}}""", new byte[12])).Message);
        var e = OpenFails(dir, RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", new byte[12]));
        Assert.Contains("needs 12 bytes", e.Message);
        Assert.Contains("too many elements", OpenFails(dir, RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", new byte[12])).Message);
    }

    [Fact]
    public void UnknownDType()
    {
        using var dir = new TempDir();
        var e = OpenFails(dir, RawSafetensors.Build("""{"q":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}}""", new byte[2]));
        Assert.Contains("tensor 'q'", e.Message);
        Assert.Contains("unknown dtype 'Q4_K'", e.Message);
    }

    [Fact]
    public void UnsupportedDTypeOpensButCannotBeReadAsFloat()
    {
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir["ids.safetensors"], """{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}""", new byte[16]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(TensorDType.I64, file.Get("ids").DType);
        var e = Assert.Throws<IrrException>(() => file.ReadSingle("ids"));
        Assert.Equal($"{path}: tensor 'ids': unsupported dtype I64 (irr reads F32, F16, BF16 and F64 as float32)", e.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var dir = new TempDir();
        using var file = SafetensorsFile.Open(HandBuilt(dir));
        Assert.EndsWith(": no tensor 'nope'", Assert.Throws<IrrException>(() => file.Get("nope")).Message);
    }

    [Fact]
    public void RandomByteFlipsInTheHeaderOnlyEverRaiseTheFormatError()
    {
        // Mutate a valid file's length prefix and header at random (seeded) and read every tensor:
        // the only exception allowed out is IrrException. Anything else (index out of range,
        // overflow, access violation) would be a crash on a corrupt or malicious file.
        using var dir = new TempDir();
        var valid = File.ReadAllBytes(HandBuilt(dir));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var rng = new Random(20261122);
        string path = dir["fuzz.safetensors"];
        int rejected = 0, accepted = 0;
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            var bytes = (byte[])valid.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++)
            {
                int at = rng.Next(headerEnd);
                bytes[at] = rng.Next(3) switch
                {
                    0 => (byte)(bytes[at] ^ (1 << rng.Next(8))),
                    1 => (byte)"0123456789[]{},:\"-e. "[rng.Next(21)],
                    _ => (byte)rng.Next(256),
                };
            }
            if (rng.Next(10) == 0) bytes = bytes[..rng.Next(bytes.Length)]; // sometimes truncate too
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var t in file.Tensors)
                    if (t.DType.IsFloatingSupported() && t.ElementCount < 1_000_000) file.ReadSingle(t.Name);
                accepted++;
            }
            catch (IrrException e)
            {
                Assert.StartsWith(path, e.Message);
                rejected++;
            }
        }
        Assert.True(rejected > 1000, $"only {rejected} of 3000 mutations were rejected");
        Assert.True(accepted > 0, "no mutation survived; the test would not notice a reader that rejects everything");
    }
}
