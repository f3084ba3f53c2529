using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Irr.IO;

/// <summary>One member of a zip archive: where its data lies in the file.</summary>
/// <param name="Name">The member's path inside the archive.</param>
/// <param name="Method">Compression method: 0 stored, 8 deflated.</param>
/// <param name="CompressedSize">Bytes of data in the file.</param>
/// <param name="Size">Bytes once decompressed.</param>
/// <param name="DataOffset">Offset of the data in the file (after the local header).</param>
internal sealed record ZipMember(string Name, int Method, long CompressedSize, long Size, long DataOffset)
{
    public bool IsStored => Method == 0;
}

/// <summary>
/// The central directory of a zip archive (PKWARE APPNOTE 6.3: end of central directory record, its zip64
/// form, central directory headers with the zip64 extra field, local headers). Read directly rather than
/// through <see cref="ZipArchive"/> because that API neither gives a member's offset nor a seekable stream, and
/// a PyTorch archive's tensor storages are stored uncompressed so that they can be memory-mapped, as
/// <c>torch.load(mmap=True)</c> does. Every offset and size is checked against the file.
/// </summary>
internal static class ZipDirectory
{
    private const uint EndSignature = 0x06054b50, End64Signature = 0x06064b50, Locator64Signature = 0x07064b50;
    private const uint CentralSignature = 0x02014b50, LocalSignature = 0x04034b50;

    /// <summary>Whether the bytes start like a zip archive (a local file header).</summary>
    public static bool IsZip(ReadOnlySpan<byte> head) => head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == LocalSignature;

    /// <summary>The archive's members by name.</summary>
    /// <exception cref="IrrException">Not a zip archive, or a record points outside the file.</exception>
    public static Dictionary<string, ZipMember> Read(MappedFile file)
    {
        string path = file.Path;
        long length = file.Length;
        // The end record is within the last 22 + 65535 (comment) bytes.
        int tailLength = (int)Math.Min(length, 22 + 65535);
        var tail = new byte[tailLength];
        file.Read(tail, length - tailLength, "the zip directory");
        int end = -1;
        for (int i = tailLength - 22; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndSignature) { end = i; break; }
        if (end < 0) throw new IrrException($"{path}: a zip archive without its central directory: the file is truncated (an unfinished download or copy?)");
        var e = tail.AsSpan(end);
        long count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long size = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long endOffset = length - tailLength + end;
        if (count == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF)
        {
            // zip64: a locator just before the end record points to the zip64 end record.
            Span<byte> locator = stackalloc byte[20];
            if (endOffset < 20) throw Bad(path, "zip64 end record locator is missing");
            file.Read(locator, endOffset - 20, "the zip64 locator");
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) != Locator64Signature) throw Bad(path, "zip64 end record locator is missing");
            long end64 = BinaryPrimitives.ReadInt64LittleEndian(locator[8..]);
            Span<byte> record = stackalloc byte[56];
            if (end64 < 0 || end64 > length - 56) throw Bad(path, "zip64 end record lies outside the file");
            file.Read(record, end64, "the zip64 end record");
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != End64Signature) throw Bad(path, "zip64 end record has a wrong signature");
            count = BinaryPrimitives.ReadInt64LittleEndian(record[32..]);
            size = BinaryPrimitives.ReadInt64LittleEndian(record[40..]);
            offset = BinaryPrimitives.ReadInt64LittleEndian(record[48..]);
        }
        if (offset < 0 || size < 0 || offset > length - size)
            throw Bad(path, "central directory lies outside the file");
        if (count < 0 || count > size / 46) throw Bad(path, $"central directory claims {count} members in {size} bytes");
        // One member per storage (a 7B Llama's archive has ~300 and a 100-byte-a-member directory); a directory of more
        // would cost memory of its own, whatever the file's size.
        long maxMembers = Limits.Get(MembersVariable, 1_000_000);
        if (count > maxMembers) throw Limits.Exceeded(path, $"the zip archive's {count} members", MembersVariable, maxMembers);
        if (size > maxMembers * 1024) throw Limits.Exceeded(path, $"the zip archive's {size}-byte central directory ({count} members)", MembersVariable, maxMembers);

        var directory = new byte[size];
        file.Read(directory, offset, "the zip central directory");
        var members = new Dictionary<string, ZipMember>(StringComparer.Ordinal);
        Span<byte> localHeader = stackalloc byte[30];
        int p = 0;
        for (long i = 0; i < count; i++)
        {
            if (p > directory.Length - 46 || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p)) != CentralSignature)
                throw Bad(path, $"central directory entry {i} is malformed");
            var h = directory.AsSpan(p);
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            long local = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            if (46L + nameLength + extraLength + commentLength > directory.Length - p) throw Bad(path, $"central directory entry {i} is truncated");
            string name = Encoding.UTF8.GetString(h.Slice(46, nameLength)), shown = InputFile.Escape(name);
            ReadZip64Extra(h.Slice(46 + nameLength, extraLength), ref uncompressed, ref compressed, ref local);
            p += 46 + nameLength + extraLength + commentLength;
            if ((flags & 1) != 0) throw new IrrException($"{path}: member '{shown}' is encrypted");
            if (method is not (0 or 8)) throw new IrrException($"{path}: member '{shown}' uses compression method {method} (only stored and deflated members are read)");
            if (method == 0 && compressed != uncompressed) throw Bad(path, $"stored member '{shown}' has different sizes");

            if (local < 0 || local > length - 30) throw Bad(path, $"member '{shown}' lies outside the file");
            file.Read(localHeader, local, $"member '{shown}'");
            if (BinaryPrimitives.ReadUInt32LittleEndian(localHeader) != LocalSignature) throw Bad(path, $"member '{shown}' has no local header");
            long dataOffset = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(localHeader[26..]) + BinaryPrimitives.ReadUInt16LittleEndian(localHeader[28..]);
            if (compressed < 0 || dataOffset > length - compressed) throw Bad(path, $"member '{shown}' runs past the end of the file (truncated?)");
            if (!members.TryAdd(name, new ZipMember(name, method, compressed, uncompressed, dataOffset)))
                throw Bad(path, $"member '{shown}' appears twice");
        }
        return members;
    }

    /// <summary>The environment variable of the most members an archive may have (1,000,000 by default).</summary>
    public const string MembersVariable = "IRR_MAX_ZIP_MEMBERS";

    // Deflate's largest expansion: a 258-byte match in as little as 2 bits, ~1032 to 1 (zlib's technical notes).
    private const long MaxDeflateRatio = 1032;

    /// <summary>
    /// A member's bytes, decompressed; an error when it is larger than <paramref name="max"/> (the limit of the
    /// environment variable <paramref name="variable"/>, when there is one), or when its declared size is more than its
    /// compressed bytes can inflate to (a lying header). Memory is the declared size, never more: inflation stops there.
    /// </summary>
    public static byte[] ReadAll(MappedFile file, ZipMember member, long max, string? variable = null)
    {
        string shown = InputFile.Escape(member.Name);
        if (member.Size > max)
        {
            if (variable is not null) throw Limits.Exceeded(file.Path, $"member '{shown}' ({member.Size} bytes)", variable, max);
            throw new IrrException($"{file.Path}: member '{shown}' is {member.Size} bytes, more than the {max} read");
        }
        if (!member.IsStored && member.Size > checked(member.CompressedSize * MaxDeflateRatio + 1024))
            throw Bad(file.Path, $"member '{shown}' claims {member.Size} bytes from {member.CompressedSize} compressed ones, more than deflate can expand to");
        if (!member.IsStored && member.CompressedSize > member.Size + member.Size / 100 + 1024)
            throw Bad(file.Path, $"member '{shown}' claims {member.Size} bytes from {member.CompressedSize} compressed ones, fewer than deflate leaves");
        var bytes = new byte[member.Size];
        if (member.IsStored)
        {
            file.Read(bytes, member.DataOffset, $"member '{shown}'");
            return bytes;
        }
        var packed = new byte[member.CompressedSize];
        file.Read(packed, member.DataOffset, $"member '{shown}'");
        try
        {
            using var inflate = new DeflateStream(new MemoryStream(packed), CompressionMode.Decompress);
            inflate.ReadExactly(bytes);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new IrrException($"{file.Path}: member '{shown}' cannot be decompressed: {InputFile.Escape(e.Message)}", e);
        }
        return bytes;
    }

    // The zip64 extended information extra field (id 1) holds, in this order, the fields whose 32-bit value is 0xFFFFFFFF.
    private static void ReadZip64Extra(ReadOnlySpan<byte> extra, ref long uncompressed, ref long compressed, ref long local)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int size = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (size > extra.Length - 4) return;
            var field = extra.Slice(4, size);
            if (id == 1)
            {
                int q = 0;
                if (uncompressed == 0xFFFFFFFF && q + 8 <= field.Length) { uncompressed = BinaryPrimitives.ReadInt64LittleEndian(field[q..]); q += 8; }
                if (compressed == 0xFFFFFFFF && q + 8 <= field.Length) { compressed = BinaryPrimitives.ReadInt64LittleEndian(field[q..]); q += 8; }
                if (local == 0xFFFFFFFF && q + 8 <= field.Length) local = BinaryPrimitives.ReadInt64LittleEndian(field[q..]);
                return;
            }
            extra = extra[(4 + size)..];
        }
    }

    private static IrrException Bad(string path, string what) => new($"{path}: not a readable zip archive: {what}");
}
