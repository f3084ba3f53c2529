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
/// opcode that pushes one, a ~300-byte Hashtable for each EMPTY_DICT, and a memo entry per MEMOIZE/PUT). It follows the
/// kind of each value on the stack far enough to refuse numbers .NET hashes by value (an integer beyond 32 bits, a float)
/// as dict keys or set elements: chosen to hash alike, they would make building a dict quadratic in time.
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
        // Memoized values: the string (for STACK_GLOBAL, whose module and name come from the stack) and the kind.
        var memo = new Dictionary<int, (string? Text, byte Kind)>();
        string? previous = null, last = null; // strings recently pushed
        long opcodes = 0, objects = 0;
        // The stack as pickle's own loader keeps it: the kind of each value, and where each open mark began.
        var stack = new List<byte>();
        var marks = new Stack<int>();
        int pos = start;
        while (true)
        {
            if (pos >= data.Length) throw new TruncatedPickleException($"{path} is cut short (the file is truncated?)");
            int at = pos;
            byte op = data[pos++];
            if (++opcodes > limits.Opcodes) throw Limits.Exceeded(path, "the number of pickle opcodes", PickleLimits.OpcodesVariable, limits.Opcodes);
            string? pushed = null;
            bool keepStrings = false;
            int pop = 0, push = 0; // values taken from and put on the stack (above the innermost mark)
            byte kind = Other;      // the kind of the value pushed
            bool popMark = false, isNew = true;
            Keys keys = Keys.None;  // which values must not be numbers (dict keys, set elements)
            switch (op)
            {
                case (byte)'.': // STOP
                    if (Items(stack, marks) < 1 || marks.Count > 0) throw Bad(path, "ends with an unbalanced stack");
                    return pos;
                case (byte)'(': // MARK
                    if (marks.Count >= limits.Nesting) throw Limits.Exceeded(path, "the nesting of pickle marks", PickleLimits.NestingVariable, limits.Nesting);
                    marks.Push(stack.Count);
                    break;
                case (byte)'0': // POP (of the top value, or of an empty mark frame)
                    if (Items(stack, marks) > 0) pop = 1;
                    else popMark = true;
                    break;
                case (byte)'1': popMark = true; break; // POP_MARK
                case (byte)'2': // DUP
                    if (stack.Count > 0) kind = stack[^1];
                    pop = 1; push = 2; isNew = false;
                    break;
                case (byte)'N' or 0x88 or 0x89 or (byte)'}' or (byte)']' or (byte)')' or 0x8f: push = 1; break; // None, True, False, empty containers
                case (byte)'Q': pop = 1; push = 1; break; // BINPERSID
                case (byte)'R' or 0x81: pop = 2; push = 1; break; // REDUCE, NEWOBJ
                case 0x92: pop = 3; push = 1; break; // NEWOBJ_EX
                case (byte)'a' or (byte)'b': pop = 2; push = 1; isNew = false; break; // APPEND, BUILD
                case (byte)'s': pop = 3; push = 1; isNew = false; keys = Keys.Pair; break; // SETITEM
                case (byte)'e': popMark = true; pop = 1; push = 1; isNew = false; break; // APPENDS (into the value below the mark)
                case (byte)'u': popMark = true; pop = 1; push = 1; isNew = false; keys = Keys.Pairs; break; // SETITEMS
                case 0x90: popMark = true; pop = 1; push = 1; isNew = false; keys = Keys.All; break; // ADDITEMS
                case (byte)'d': popMark = true; push = 1; keys = Keys.Pairs; break; // DICT
                case 0x91: popMark = true; push = 1; keys = Keys.All; break; // FROZENSET
                case (byte)'l' or (byte)'t' or (byte)'o': popMark = true; push = 1; break; // LIST, TUPLE, OBJ
                case 0x85: pop = 1; push = 1; break; // TUPLE1
                case 0x86: pop = 2; push = 1; break; // TUPLE2
                case 0x87: pop = 3; push = 1; break; // TUPLE3
                case 0x98: // READONLY_BUFFER
                    if (stack.Count > 0) kind = stack[^1];
                    pop = 1; push = 1; isNew = false;
                    break;
                case (byte)'F':
                    Line(data, ref pos, path);
                    push = 1; kind = Number;
                    break;
                case (byte)'I' or (byte)'L':
                {
                    // Python refuses an integer of more than 4300 decimal digits (sys.int_info.default_max_str_digits);
                    // parsing one is quadratic in its length.
                    string digits = Line(data, ref pos, path);
                    if (digits.Length > MaxIntegerDigits + 2)
                        throw Bad(path, $"has an integer of more than {MaxIntegerDigits} digits (Python's limit for integer strings)");
                    push = 1;
                    if (op == (byte)'L' || !int.TryParse(digits, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _)) kind = Number;
                    break;
                }
                case (byte)'S' or (byte)'V':
                    pushed = Line(data, ref pos, path);
                    push = 1;
                    break;
                case (byte)'P':
                    throw Bad(path, "uses a text persistent id (PERSID)");
                case (byte)'J': Skip(data, ref pos, 4, path); push = 1; break;
                case (byte)'K': Skip(data, ref pos, 1, path); push = 1; break;
                case (byte)'M': Skip(data, ref pos, 2, path); push = 1; break;
                case (byte)'G': Skip(data, ref pos, 8, path); push = 1; kind = Number; break;
                case 0x80: // PROTO
                    Skip(data, ref pos, 1, path);
                    if (data[pos - 1] > 5) throw Bad(path, $"uses pickle protocol {data[pos - 1]}");
                    break;
                case 0x95: Skip(data, ref pos, 8, path); break; // FRAME
                case (byte)'T' or (byte)'B': Skip(data, ref pos, Length(data, ref pos, 4, path), path); push = 1; break;
                case (byte)'U' or (byte)'C': Skip(data, ref pos, Length(data, ref pos, 1, path), path); push = 1; break;
                case 0x8a: Skip(data, ref pos, Length(data, ref pos, 1, path), path); push = 1; kind = Number; break; // LONG1
                case 0x8b: Skip(data, ref pos, Length(data, ref pos, 4, path), path); push = 1; kind = Number; break; // LONG4
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
                case (byte)'p' or (byte)'q' or (byte)'r' or 0x94: // PUT, BINPUT, LONG_BINPUT, MEMOIZE
                {
                    int index = op switch
                    {
                        (byte)'p' => MemoIndex(ParseLong(Line(data, ref pos, path), path), path),
                        (byte)'q' => MemoIndex(Length(data, ref pos, 1, path), path),
                        (byte)'r' => MemoIndex(Length(data, ref pos, 4, path), path),
                        _ => memo.Count,
                    };
                    if (stack.Count > 0) kind = stack[^1];
                    memo[index] = (last, kind);
                    if (memo.Count > limits.Memo) throw Limits.Exceeded(path, "the number of pickle memo entries", PickleLimits.MemoVariable, limits.Memo);
                    pop = push = 1;
                    isNew = false;
                    keepStrings = true;
                    break;
                }
                case (byte)'g' or (byte)'h' or (byte)'j': // GET, BINGET, LONG_BINGET
                {
                    int index = op switch
                    {
                        (byte)'g' => MemoIndex(ParseLong(Line(data, ref pos, path), path), path),
                        (byte)'h' => MemoIndex(Length(data, ref pos, 1, path), path),
                        _ => MemoIndex(Length(data, ref pos, 4, path), path),
                    };
                    var value = memo.GetValueOrDefault(index, (null, Other));
                    (pushed, kind) = value;
                    push = 1;
                    isNew = false;
                    break;
                }
                case 0x82 or 0x83 or 0x84:
                    throw Bad(path, "uses the extension registry (EXT1/EXT2/EXT4)");
                case 0x97:
                    throw Bad(path, "uses out-of-band buffers (NEXT_BUFFER)");
                default:
                    throw Bad(path, $"has an invalid opcode 0x{op:x2} at byte {at}");
            }
            if (popMark)
            {
                if (marks.Count == 0) throw Bad(path, $"has an unbalanced stack (no mark for the opcode at byte {at})");
                int frame = marks.Pop();
                // Dict keys and set elements are hashed as they are inserted; .NET hashes a long, BigInteger or double
                // by its value, so numbers chosen to collide would make each insertion linear in the dict's size.
                for (int i = frame; i < stack.Count; i += keys == Keys.All ? 1 : 2)
                    if (keys != Keys.None && stack[i] == Number) throw NumberKey(path, at);
                stack.RemoveRange(frame, stack.Count - frame);
            }
            if (Items(stack, marks) < pop) throw Bad(path, $"has an unbalanced stack (too few values for the opcode at byte {at})");
            if (keys == Keys.Pair && stack[^2] == Number) throw NumberKey(path, at);
            stack.RemoveRange(stack.Count - pop, pop);
            for (int i = 0; i < push; i++) stack.Add(kind);
            if (stack.Count + marks.Count > limits.StackDepth) throw Limits.Exceeded(path, "the pickle's stack depth", PickleLimits.StackDepthVariable, limits.StackDepth);
            if (push > 0 && isNew && ++objects > limits.Objects)
                throw Limits.Exceeded(path, "the number of objects the pickle builds", PickleLimits.ObjectsVariable, limits.Objects);
            if (!keepStrings)
            {
                previous = last;
                last = pushed;
            }
        }
    }

    // The kinds of stack values the walk tells apart: numbers that .NET hashes by value (an int beyond 32 bits, a float), and others.
    private const byte Other = 0, Number = 1;

    private enum Keys { None, Pair, Pairs, All }

    private static int Items(List<byte> stack, Stack<int> marks) => stack.Count - (marks.Count > 0 ? marks.Peek() : 0);

    private static IrrException NumberKey(string path, int at) =>
        Bad(path, $"uses a number (an integer beyond 32 bits or a float) as a dict key or set element (the opcode at byte {at})");

    private static int MemoIndex(long index, string path) =>
        index is >= 0 and <= int.MaxValue ? (int)index : throw Bad(path, "has an invalid memo index");

    // Python's sys.int_info.default_max_str_digits.
    private const int MaxIntegerDigits = 4300;

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

    // A BINUNICODE string: Python decodes it as UTF-8 (with 'surrogatepass'), and torch.load fails on bytes that are not;
    // decoded here with replacement characters, such a tensor name would be converted under another name. A lone
    // surrogate, which Python does read, is no Unicode (safetensors cannot write it): refused too, as in safetensors names.
    private static string Utf8(byte[] data, ref int pos, long count, string path)
    {
        int start = pos;
        Skip(data, ref pos, count, path);
        if (!System.Text.Unicode.Utf8.IsValid(data.AsSpan(start, (int)count)))
            throw Bad(path, $"holds a string (at byte {start}) that is not valid UTF-8 or is a lone surrogate");
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
