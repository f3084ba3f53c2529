using System.Buffers.Binary;
using System.Text;

namespace Irr.IO;

/// <summary>
/// Walks a pickle's opcodes without running it (as <c>pickletools.genops</c> does) before it is
/// unpickled: every opcode must be known and fit in the data, and every global it names (GLOBAL,
/// INST, STACK_GLOBAL) must be on <see cref="TorchFile"/>'s allow-list. The first other global is
/// refused by name, so a hostile file never reaches a constructor.
/// </summary>
internal static class PickleScanner
{
    /// <summary>
    /// Checks the pickle that starts at <paramref name="start"/> and returns the offset just after its STOP
    /// opcode (a legacy PyTorch file is several pickles in a row). <paramref name="label"/> names the pickle in
    /// messages ("data.pkl"). A pickle that runs past the data is a <see cref="TruncatedPickleException"/>.
    /// </summary>
    public static int Check(byte[] data, string file, int start = 0, string label = "data.pkl")
    {
        string path = $"{file}: {label}"; // where a malformed pickle is; a refused global names the file only
        // Strings recently pushed (for STACK_GLOBAL, whose module and name come from the stack) and memoized ones.
        var memo = new Dictionary<long, string?>();
        string? previous = null, last = null;
        int pos = start;
        while (true)
        {
            if (pos >= data.Length) throw new TruncatedPickleException($"{path} is cut short (the file is truncated?)");
            byte op = data[pos++];
            string? pushed = null;
            bool keepStrings = false;
            switch (op)
            {
                case (byte)'.': // STOP
                    return pos;
                case (byte)'(' or (byte)'0' or (byte)'1' or (byte)'2' or (byte)'N' or (byte)'Q' or (byte)'R' or (byte)'a' or (byte)'b'
                    or (byte)'d' or (byte)'}' or (byte)'e' or (byte)'l' or (byte)']' or (byte)'o' or (byte)'s' or (byte)'t' or (byte)')'
                    or (byte)'u' or 0x81 or 0x85 or 0x86 or 0x87 or 0x88 or 0x89 or 0x8f or 0x90 or 0x91 or 0x92 or 0x98:
                    break;
                case (byte)'F' or (byte)'I' or (byte)'L':
                    Line(data, ref pos, path);
                    break;
                case (byte)'S' or (byte)'V':
                    pushed = Line(data, ref pos, path);
                    break;
                case (byte)'P':
                    throw Bad(path, "uses a text persistent id (PERSID)");
                case (byte)'J': Skip(data, ref pos, 4, path); break;
                case (byte)'K': Skip(data, ref pos, 1, path); break;
                case (byte)'M': Skip(data, ref pos, 2, path); break;
                case (byte)'G': Skip(data, ref pos, 8, path); break;
                case 0x80: // PROTO
                    Skip(data, ref pos, 1, path);
                    if (data[pos - 1] > 5) throw Bad(path, $"uses pickle protocol {data[pos - 1]}");
                    break;
                case 0x95: Skip(data, ref pos, 8, path); break; // FRAME
                case (byte)'T' or (byte)'B': Skip(data, ref pos, Length(data, ref pos, 4, path), path); break;
                case (byte)'U' or (byte)'C': Skip(data, ref pos, Length(data, ref pos, 1, path), path); break;
                case 0x8a: Skip(data, ref pos, Length(data, ref pos, 1, path), path); break; // LONG1
                case 0x8b: Skip(data, ref pos, Length(data, ref pos, 4, path), path); break; // LONG4
                case 0x8e or 0x96: Skip(data, ref pos, Length(data, ref pos, 8, path), path); break; // BINBYTES8, BYTEARRAY8
                case (byte)'X': pushed = Utf8(data, ref pos, Length(data, ref pos, 4, path), path); break;
                case 0x8c: pushed = Utf8(data, ref pos, Length(data, ref pos, 1, path), path); break;
                case 0x8d: pushed = Utf8(data, ref pos, Length(data, ref pos, 8, path), path); break;
                case (byte)'c' or (byte)'i': // GLOBAL, INST
                {
                    string module = Line(data, ref pos, path), name = Line(data, ref pos, path);
                    Require(module, name, file);
                    if (op == (byte)'i') throw Refuse(file, module, name);
                    break;
                }
                case 0x93: // STACK_GLOBAL
                    if (previous is null || last is null) throw Bad(path, "names a global computed at load time (STACK_GLOBAL)");
                    Require(previous, last, file);
                    break;
                case (byte)'p': memo[ParseLong(Line(data, ref pos, path), path)] = last; keepStrings = true; break;
                case (byte)'q': Skip(data, ref pos, 1, path); memo[data[pos - 1]] = last; keepStrings = true; break;
                case (byte)'r': memo[Length(data, ref pos, 4, path)] = last; keepStrings = true; break;
                case 0x94: memo[memo.Count] = last; keepStrings = true; break; // MEMOIZE
                case (byte)'g': pushed = memo.GetValueOrDefault(ParseLong(Line(data, ref pos, path), path)); break;
                case (byte)'h': Skip(data, ref pos, 1, path); pushed = memo.GetValueOrDefault(data[pos - 1]); break;
                case (byte)'j': pushed = memo.GetValueOrDefault(Length(data, ref pos, 4, path)); break;
                case 0x82 or 0x83 or 0x84:
                    throw Bad(path, "uses the extension registry (EXT1/EXT2/EXT4)");
                case 0x97:
                    throw Bad(path, "uses out-of-band buffers (NEXT_BUFFER)");
                default:
                    throw Bad(path, $"has an invalid opcode 0x{op:x2} at byte {pos - 1}");
            }
            if (!keepStrings)
            {
                previous = last;
                last = pushed;
            }
        }
    }

    private static void Require(string module, string name, string path)
    {
        if (!TorchFile.IsAllowed(module, name)) throw Refuse(path, module, name);
    }

    private static IrrException Refuse(string path, string module, string name) =>
        new($"{path}: refuses the pickle global '{Printable(module)}.{Printable(name)}' " +
            (module == "__main__" || module.StartsWith("torch.nn.modules", StringComparison.Ordinal) || module.StartsWith("transformers.", StringComparison.Ordinal)
                ? "(a whole pickled model, not a state dict; save model.state_dict() instead)"
                : "(only a state dict's tensors are read)"));

    private static IrrException Bad(string path, string what) =>
        what == "is truncated" ? new TruncatedPickleException($"{path} is cut short (the file is truncated?)") : new($"{path} {what}; not a state dict pickle");

    private static string Printable(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s.Length > 100 ? s[..100] : s) sb.Append(char.IsControl(c) ? '?' : c);
        return sb.ToString();
    }

    private static void Skip(byte[] data, ref int pos, long count, string path)
    {
        if (count < 0 || count > data.Length - pos) throw Bad(path, "is truncated");
        pos += (int)count;
    }

    private static long Length(byte[] data, ref int pos, int width, string path)
    {
        if (data.Length - pos < width) throw Bad(path, "is truncated");
        var s = data.AsSpan(pos, width);
        long n = width switch
        {
            1 => s[0],
            4 => BinaryPrimitives.ReadInt32LittleEndian(s),
            _ => BinaryPrimitives.ReadInt64LittleEndian(s),
        };
        pos += width;
        if (n < 0) throw Bad(path, "has a negative length");
        return n;
    }

    private static string Utf8(byte[] data, ref int pos, long count, string path)
    {
        int start = pos;
        Skip(data, ref pos, count, path);
        return Encoding.UTF8.GetString(data, start, (int)count);
    }

    private static string Line(byte[] data, ref int pos, string path)
    {
        int end = Array.IndexOf(data, (byte)'\n', pos);
        if (end < 0) throw Bad(path, "is truncated");
        string s = Encoding.UTF8.GetString(data, pos, end - pos);
        pos = end + 1;
        return s;
    }

    private static long ParseLong(string s, string path) =>
        long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n : throw Bad(path, "has an invalid memo index");
}

/// <summary>A pickle that runs past the end of the bytes given (more of the file may hold the rest).</summary>
internal sealed class TruncatedPickleException(string message) : IrrException(message);
