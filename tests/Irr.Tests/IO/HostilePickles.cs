using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Irr.Tests.IO;

/// <summary>One tensor of a hand-built state dict: a view of storage <paramref name="Key"/> (element counts, not bytes).</summary>
internal sealed record PickledTensor(string Name, string Key, long Numel, long Offset, long[] Shape, long[] Strides, string StorageType = "FloatStorage");

/// <summary>
/// State dict files built byte by byte from the pickle opcodes (Python's Lib/pickletools.py) and torch.save's two layouts
/// (torch/serialization.py), independently of the reader, with sizes, strides and storages a real file would never
/// have: the generator of the hostile-container tests (issue 24).
/// </summary>
internal static class HostilePickles
{
    /// <summary>A protocol-2 pickle of <c>OrderedDict(name → _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()))</c>.</summary>
    public static byte[] StateDict(bool legacy, params PickledTensor[] tensors)
    {
        var b = new List<byte> { 0x80, 2 };
        Global(b, "collections", "OrderedDict");
        b.AddRange(")R("u8.ToArray());
        foreach (var t in tensors)
        {
            Str(b, t.Name);
            Global(b, "torch._utils", "_rebuild_tensor_v2");
            b.Add((byte)'(');
            // the persistent id ('storage', type, key, location, numel[, view_metadata])
            b.Add((byte)'(');
            Str(b, "storage");
            Global(b, "torch", t.StorageType);
            Str(b, t.Key);
            Str(b, "cpu");
            Int(b, t.Numel);
            if (legacy) b.Add((byte)'N');
            b.AddRange("tQ"u8.ToArray());
            Int(b, t.Offset);
            Tuple(b, t.Shape);
            Tuple(b, t.Strides);
            b.Add(0x89); // False
            Global(b, "collections", "OrderedDict");
            b.AddRange(")RtR"u8.ToArray());
        }
        b.AddRange("u."u8.ToArray());
        return [.. b];
    }

    /// <summary>A torch.save zip archive (storages stored) whose data.pkl is stored or deflated.</summary>
    public static string Zip(string path, byte[] pickle, bool deflate = false, params (string Key, byte[] Data)[] storages)
    {
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            void Add(string name, byte[] data, CompressionLevel level)
            {
                using var s = zip.CreateEntry("archive/" + name, level).Open();
                s.Write(data);
            }
            Add("data.pkl", pickle, deflate ? CompressionLevel.SmallestSize : CompressionLevel.NoCompression);
            foreach (var (key, data) in storages) Add("data/" + key, data, CompressionLevel.NoCompression);
            Add("version", "3\n"u8.ToArray(), CompressionLevel.NoCompression);
        }
        return path;
    }

    /// <summary>
    /// A legacy torch.save file: the magic number, protocol and system info pickles, <paramref name="pickle"/>, the list of
    /// storage keys, then each storage as an int64 element count (<paramref name="declared"/>, or its real count) and its bytes.
    /// </summary>
    public static string Legacy(string path, byte[] pickle, params (string Key, long Declared, byte[] Data)[] storages)
    {
        var b = new List<byte>(Encoding.Latin1.GetBytes(TorchFileTests.LegacyHead));
        b.AddRange(pickle);
        b.AddRange(new byte[] { 0x80, 2, (byte)'(' });
        foreach (var (key, _, _) in storages) Str(b, key);
        b.AddRange("l."u8.ToArray());
        foreach (var (_, declared, data) in storages)
        {
            b.AddRange(BitConverter.GetBytes(declared));
            b.AddRange(data);
        }
        File.WriteAllBytes(path, [.. b]);
        return path;
    }

    /// <summary>Float32 values 0, 1, … as little-endian bytes.</summary>
    public static byte[] Counting(int n)
    {
        var bytes = new byte[n * 4];
        for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), i);
        return bytes;
    }

    /// <summary>A pickle of <paramref name="body"/> repeated <paramref name="times"/> between a PROTO 2 prefix and a suffix.</summary>
    public static byte[] Flood(string prefix, string body, int times, string suffix = "")
    {
        var b = Encoding.Latin1.GetBytes(body);
        var pre = Encoding.Latin1.GetBytes("\u0080\u0002" + prefix);
        var post = Encoding.Latin1.GetBytes(suffix + ".");
        var all = new byte[pre.Length + b.Length * times + post.Length];
        pre.CopyTo(all, 0);
        for (int i = 0; i < times; i++) b.CopyTo(all, pre.Length + i * b.Length);
        post.CopyTo(all, all.Length - post.Length);
        return all;
    }

    /// <summary>
    /// Rewrites the declared (uncompressed) size of member <paramref name="member"/> in the central directory and in its
    /// local header (APPNOTE 4.3.7 and 4.3.12: offsets 22 and 24), leaving its data as it is: a lying header.
    /// </summary>
    public static void PatchDeclaredSize(string path, string member, uint size)
    {
        byte[] bytes = File.ReadAllBytes(path);
        byte[] name = Encoding.UTF8.GetBytes(member);
        for (int i = 0; i + 46 <= bytes.Length; i++)
        {
            uint sig = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i));
            if (sig == 0x04034b50 && bytes.AsSpan(i + 30).StartsWith(name) && BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i + 26)) == name.Length)
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i + 22), size);
            if (sig == 0x02014b50 && bytes.AsSpan(i + 46).StartsWith(name) && BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i + 28)) == name.Length)
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i + 24), size);
        }
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// A random opcode sequence (seeded): every opcode of protocols 0–5 with arguments of random, sometimes absurd,
    /// sizes, allowed and refused globals, ending in STOP; most are malformed, some well-formed.
    /// </summary>
    public static byte[] Random(Random rng)
    {
        var b = new List<byte> { 0x80, (byte)rng.Next(0, 7) };
        int n = rng.Next(1, 60);
        for (int i = 0; i < n; i++)
        {
            switch (rng.Next(24))
            {
                case 0: b.Add((byte)"()0]12Naebdelstuo}R.QN"[rng.Next(22)]); break;
                case 1: b.Add((byte)rng.Next(0x80, 0x99)); break;
                case 2: b.Add((byte)'J'); b.AddRange(BitConverter.GetBytes(rng.Next(int.MinValue, int.MaxValue))); break;
                case 3: Int(b, rng.Next(3) == 0 ? long.MaxValue - rng.Next(100) : rng.NextInt64(-4, 1L << rng.Next(1, 63))); break;
                case 4: Str(b, rng.Next(3) == 0 ? "storage" : ((char)rng.Next(0, 0xd900)).ToString()); break;
                case 5: Global(b, "torch", rng.Next(2) == 0 ? "FloatStorage" : "Size"); break;
                case 6: Global(b, "torch._utils", "_rebuild_tensor_v2"); break;
                case 7: Global(b, "collections", "OrderedDict"); break;
                case 8: b.Add((byte)'X'); b.AddRange(BitConverter.GetBytes(rng.Next(3) == 0 ? int.MaxValue : rng.Next(0, 8))); break;
                case 9: b.Add((byte)"hqjr"[rng.Next(4)]); b.Add((byte)rng.Next(256)); if (b[^2] is (byte)'j' or (byte)'r') b.AddRange(new byte[] { 0, 0, 0 }); break;
                case 10: b.Add(0x94); break;
                case 11: b.AddRange(Encoding.ASCII.GetBytes(rng.Next(2) == 0 ? "I" + rng.NextInt64() + "\n" : "L" + new string('9', rng.Next(1, 6000)) + "L\n")); break;
                case 12: b.Add(0x95); b.AddRange(BitConverter.GetBytes(rng.NextInt64())); break;
                case 13: b.Add(0x8a); b.Add((byte)rng.Next(256)); break;
                case 14: b.Add(0x8b); b.AddRange(BitConverter.GetBytes(rng.Next(-2, 1 << 20))); break;
                case 15: b.Add((byte)'K'); b.Add((byte)rng.Next(256)); break;
                case 16: b.Add((byte)'G'); b.AddRange(BitConverter.GetBytes(rng.NextDouble())); break;
                case 17: b.Add((byte)"pg"[rng.Next(2)]); b.AddRange(Encoding.ASCII.GetBytes(rng.Next(-5, 1 << 20) + "\n")); break;
                case 18: Global(b, "posix", "system"); break;
                case 19: b.Add((byte)'('); for (int k = rng.Next(6); k > 0; k--) Int(b, rng.Next(-1, 5)); b.Add((byte)'t'); break;
                case 20: b.Add(0x8c); b.Add(3); b.AddRange("cpu"u8.ToArray()); break;
                case 21: b.Add((byte)'B'); b.AddRange(BitConverter.GetBytes(rng.Next(0, 5))); b.AddRange(new byte[rng.Next(0, 5)]); break;
                case 22: b.Add((byte)'S'); b.AddRange(Encoding.ASCII.GetBytes("'x\\x1b'\n")); break;
                default: b.Add((byte)"\u0085\u0086\u0087"[rng.Next(3)]); break;
            }
        }
        b.Add((byte)'.');
        return [.. b];
    }

    private static void Global(List<byte> b, string module, string name) => b.AddRange(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

    private static void Str(List<byte> b, string s)
    {
        byte[] u = Encoding.UTF8.GetBytes(s);
        b.Add((byte)'X');
        b.AddRange(BitConverter.GetBytes(u.Length));
        b.AddRange(u);
    }

    // LONG1 of 8 bytes: any int64, two's complement little-endian (pickle's encode_long).
    private static void Int(List<byte> b, long v)
    {
        b.Add(0x8a);
        b.Add(8);
        b.AddRange(BitConverter.GetBytes(v));
    }

    private static void Tuple(List<byte> b, long[] values)
    {
        b.Add((byte)'(');
        foreach (long v in values) Int(b, v);
        b.Add((byte)'t');
    }
}
