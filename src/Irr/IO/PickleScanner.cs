using System.Buffers.Binary;
using System.Text;

namespace Irr.IO;

/// <summary>
/// Walks a pickle's opcodes without running it (as <c>pickletools.genops</c> does) before it is
/// unpickled: every opcode must be known and fit in the data, and every global it names (GLOBAL,
/// INST, STACK_GLOBAL) must be on <see cref="TorchFile"/>'s allow-list. The first other global is
/// refused by name, so a hostile file never reaches a constructor. The walk also counts what unpickling would build
/// (<see cref="PickleLimits"/>): opcodes, memo entries, objects, the stack's depth and the nesting of its marks, and
/// refuses a pickle over a budget before a single object is made (Razorvine's unpickler allocates one object per
/// opcode that pushes one, a ~300-byte Hashtable for each EMPTY_DICT, and a memo entry per MEMOIZE/PUT).
/// </summary>
internal static class PickleScanner
{
    /// <summary>
    /// Checks the pickle that starts at <paramref name="start"/> and returns the offset just after its STOP
    /// opcode (a legacy PyTorch file is several pickles in a row). <paramref name="label"/> names the pickle in
    /// messages ("data.pkl"). A pickle that runs past the data is a <see cref="TruncatedPickleException"/>.
    /// </summary>
    /// <exception cref="IrrException">A refused global, an invalid opcode, a malformed stack, or a budget exceeded.</exception>
    public static int Check(byte[] data, string file, int start = 0, string label = "data.pkl")
    {
        string path = $"{file}: {label}"; // where a malformed pickle is; a refused global names the file only
        var limits = PickleLimits.Current();
        // Strings recently pushed (for STACK_GLOBAL, whose module and name come from the stack) and memoized ones.
        var memo = new Dictionary<long, string?>();
        string? previous = null, last = null;
        long opcodes = 0, objects = 0;
        // The stack as pickle's own loader keeps it: items above the innermost mark, and the counts below each open mark.
        long items = 0, depth = 0;
        var marks = new Stack<long>();
        int pos = start;
        while (true)
        {
            if (pos >= data.Length) throw new TruncatedPickleException($"{path} is cut short (the file is truncated?)");
            byte op = data[pos++];
            if (++opcodes > limits.Opcodes) throw Limits.Exceeded(path, "the number of pickle opcodes", PickleLimits.OpcodesVariable, limits.Opcodes);
            string? pushed = null;
            bool keepStrings = false;
            int pop = 0, push = 0; // items taken from and put on the stack above the innermost mark
            bool popMark = false, isNew = true;
            switch (op)
            {
                case (byte)'.': // STOP
                    if (items < 1 || marks.Count > 0) throw Bad(path, "ends with an unbalanced stack");
                    return pos;
                case (byte)'(': // MARK
                    if (marks.Count >= limits.Nesting) throw Limits.Exceeded(path, "the nesting of pickle marks", PickleLimits.NestingVariable, limits.Nesting);
                    marks.Push(items);
                    items = 0;
                    depth++;
                    break;
                case (byte)'0': // POP (of the top item, or of an empty mark frame)
                    if (items > 0) pop = 1;
                    else popMark = true;
                    break;
                case (byte)'1': popMark = true; break; // POP_MARK
                case (byte)'2': pop = 1; push = 2; isNew = false; break; // DUP
                case (byte)'N' or 0x88 or 0x89 or (byte)'}' or (byte)']' or (byte)')' or 0x8f: push = 1; break; // None, True, False, empty containers
                case (byte)'Q': pop = 1; push = 1; break; // BINPERSID
                case (byte)'R' or 0x81: pop = 2; push = 1; break; // REDUCE, NEWOBJ
                case 0x92: pop = 3; push = 1; break; // NEWOBJ_EX
                case (byte)'a' or (byte)'b': pop = 2; push = 1; isNew = false; break; // APPEND, BUILD
                case (byte)'s': pop = 3; push = 1; isNew = false; break; // SETITEM
                case (byte)'e' or (byte)'u' or 0x90: popMark = true; pop = 1; push = 1; isNew = false; break; // APPENDS, SETITEMS, ADDITEMS (into the item below the mark)
                case (byte)'d' or (byte)'l' or (byte)'t' or 0x91: popMark = true; push = 1; break; // DICT, LIST, TUPLE, FROZENSET
                case (byte)'o': popMark = true; push = 1; break; // OBJ
                case 0x85: pop = 1; push = 1; break; // TUPLE1
                case 0x86: pop = 2; push = 1; break; // TUPLE2
                case 0x87: pop = 3; push = 1; break; // TUPLE3
                case 0x98: pop = 1; push = 1; isNew = false; break; // READONLY_BUFFER
                case (byte)'F':
                    Line(data, ref pos, path);
                    push = 1;
                    break;
                case (byte)'I' or (byte)'L':
                    // Python refuses an integer of more than 4300 decimal digits (sys.int_info.default_max_str_digits);
                    // parsing one is quadratic in its length.
                    if (Line(data, ref pos, path).Length > MaxIntegerDigits + 2)
                        throw Bad(path, $"has an integer of more than {MaxIntegerDigits} digits (Python's limit for integer strings)");
                    push = 1;
                    break;
                case (byte)'S' or (byte)'V':
                    pushed = Line(data, ref pos, path);
                    push = 1;
                    break;
                case (byte)'P':
                    throw Bad(path, "uses a text persistent id (PERSID)");
                case (byte)'J': Skip(data, ref pos, 4, path); push = 1; break;
                case (byte)'K': Skip(data, ref pos, 1, path); push = 1; break;
                case (byte)'M': Skip(data, ref pos, 2, path); push = 1; break;
                case (byte)'G': Skip(data, ref pos, 8, path); push = 1; break;
                case 0x80: // PROTO
                    Skip(data, ref pos, 1, path);
                    if (data[pos - 1] > 5) throw Bad(path, $"uses pickle protocol {data[pos - 1]}");
                    break;
                case 0x95: Skip(data, ref pos, 8, path); break; // FRAME
                case (byte)'T' or (byte)'B': Skip(data, ref pos, Length(data, ref pos, 4, path), path); push = 1; break;
                case (byte)'U' or (byte)'C': Skip(data, ref pos, Length(data, ref pos, 1, path), path); push = 1; break;
                case 0x8a: Skip(data, ref pos, Length(data, ref pos, 1, path), path); push = 1; break; // LONG1
                case 0x8b: Skip(data, ref pos, Length(data, ref pos, 4, path), path); push = 1; break; // LONG4
                case 0x8e or 0x96: Skip(data, ref pos, Length(data, ref pos, 8, path), path); push = 1; break; // BINBYTES8, BYTEARRAY8
                case (byte)'X': pushed = Utf8(data, ref pos, Length(data, ref pos, 4, path), path); push = 1; break;
                case 0x8c: pushed = Utf8(data, ref pos, Length(data, ref pos, 1, path), path); push = 1; break;
                case 0x8d: pushed = Utf8(data, ref pos, Length(data, ref pos, 8, path), path); push = 1; break;
                case (byte)'c' or (byte)'i': // GLOBAL, INST
                {
                    string module = Line(data, ref pos, path), name = Line(data, ref pos, path);
                    Require(module, name, file);
                    if (op == (byte)'i') throw Refuse(file, module, name);
                    push = 1;
                    break;
                }
                case 0x93: // STACK_GLOBAL
                    if (previous is null || last is null) throw Bad(path, "names a global computed at load time (STACK_GLOBAL)");
                    Require(previous, last, file);
                    pop = 2;
                    push = 1;
                    break;
                case (byte)'p': Memoize(memo, ParseLong(Line(data, ref pos, path), path), last, path, limits); pop = push = 1; isNew = false; keepStrings = true; break;
                case (byte)'q': Skip(data, ref pos, 1, path); Memoize(memo, data[pos - 1], last, path, limits); pop = push = 1; isNew = false; keepStrings = true; break;
                case (byte)'r': Memoize(memo, Length(data, ref pos, 4, path), last, path, limits); pop = push = 1; isNew = false; keepStrings = true; break;
                case 0x94: Memoize(memo, memo.Count, last, path, limits); pop = push = 1; isNew = false; keepStrings = true; break; // MEMOIZE
                case (byte)'g': pushed = memo.GetValueOrDefault(ParseLong(Line(data, ref pos, path), path)); push = 1; isNew = false; break;
                case (byte)'h': Skip(data, ref pos, 1, path); pushed = memo.GetValueOrDefault(data[pos - 1]); push = 1; isNew = false; break;
                case (byte)'j': pushed = memo.GetValueOrDefault(Length(data, ref pos, 4, path)); push = 1; isNew = false; break;
                case 0x82 or 0x83 or 0x84:
                    throw Bad(path, "uses the extension registry (EXT1/EXT2/EXT4)");
                case 0x97:
                    throw Bad(path, "uses out-of-band buffers (NEXT_BUFFER)");
                default:
                    throw Bad(path, $"has an invalid opcode 0x{op:x2} at byte {pos - 1}");
            }
            if (popMark)
            {
                if (marks.Count == 0) throw Bad(path, $"has an unbalanced stack (no mark for the opcode at byte {pos - 1})");
                depth -= items + 1;
                items = marks.Pop();
            }
            if (items < pop) throw Bad(path, $"has an unbalanced stack (too few items for the opcode at byte {pos - 1})");
            items += push - pop;
            depth += push - pop;
            if (depth > limits.StackDepth) throw Limits.Exceeded(path, "the pickle's stack depth", PickleLimits.StackDepthVariable, limits.StackDepth);
            if (push > 0 && isNew && ++objects > limits.Objects)
                throw Limits.Exceeded(path, "the number of objects the pickle builds", PickleLimits.ObjectsVariable, limits.Objects);
            if (!keepStrings)
            {
                previous = last;
                last = pushed;
            }
        }
    }

    // Python's sys.int_info.default_max_str_digits.
    private const int MaxIntegerDigits = 4300;

    private static void Memoize(Dictionary<long, string?> memo, long index, string? value, string path, PickleLimits limits)
    {
        memo[index] = value;
        if (memo.Count > limits.Memo) throw Limits.Exceeded(path, "the number of pickle memo entries", PickleLimits.MemoVariable, limits.Memo);
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

    private static string Printable(string s) => InputFile.Escape(s, 100);

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

/// <summary>
/// The budgets a state dict's pickle is read within (docs/formats.md, "Pickles and tensor containers"), each sized
/// from real files with wide headroom: a 7B Llama's data.pkl (291 tensors) is ~30 KB of ~11,000 opcodes building
/// ~4,500 objects, with ~2,000 memo entries, a stack at most ~2,010 deep (a SETITEMS batch of 1,000 pairs) and marks
/// nested 3 deep. Together they bound what unpickling allocates to a few hundred MB.
/// </summary>
internal sealed record PickleLimits(long Bytes, long Opcodes, long Objects, long Memo, long StackDepth, long Nesting)
{
    public const string BytesVariable = "IRR_MAX_PICKLE_BYTES";
    public const string OpcodesVariable = "IRR_MAX_PICKLE_OPCODES";
    public const string ObjectsVariable = "IRR_MAX_PICKLE_OBJECTS";
    public const string MemoVariable = "IRR_MAX_PICKLE_MEMO";
    public const string StackDepthVariable = "IRR_MAX_PICKLE_STACK";
    public const string NestingVariable = "IRR_MAX_PICKLE_NESTING";

    /// <summary>The limits now (each environment variable read anew).</summary>
    public static PickleLimits Current() => new(
        Limits.Get(BytesVariable, 64L << 20),
        Limits.Get(OpcodesVariable, 10_000_000),
        Limits.Get(ObjectsVariable, 1_000_000),
        Limits.Get(MemoVariable, 1_000_000),
        Limits.Get(StackDepthVariable, 100_000),
        Limits.Get(NestingVariable, 100));
}
