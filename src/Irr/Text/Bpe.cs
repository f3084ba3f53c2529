using System.Collections.Concurrent;

namespace Irr.Text;

/// <summary>
/// The <c>BPE</c> model of <c>tokenizer.json</c>, with HF <c>tokenizers</c>' semantics: a word is split
/// into characters (missing ones become <c>&lt;0xNN&gt;</c> byte tokens with <c>byte_fallback</c>, or the
/// unknown token, fused when <c>fuse_unk</c>), then the pair of lowest merge rank is merged, leftmost
/// first, until no pair has a merge. A priority queue keyed by (rank, position) finds that pair,
/// and finished words are cached.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheCapacity = 100_000;
    private const int MaxCachedLength = 256;

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabBySpan;
    private readonly string?[] idToToken;
    private readonly Dictionary<long, long> merges; // (left id, right id) -> (rank << 32 | new id)
    private readonly int[] bmpCharIds; // id of each single BMP character, or -1
    private readonly int[] byteIds; // id of <0xNN>, or -1
    private readonly int? unkId;
    private readonly bool byteFallback, fuseUnk, ignoreMerges;
    private readonly string? prefix, suffix;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> cacheBySpan;
    private int cacheCount;

    [ThreadStatic] private static Scratch? scratch;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> mergeList, string? unkToken,
        bool byteFallback, bool fuseUnk, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix,
        Func<int, string, Exception> badMerge, Func<string, Exception> badUnk)
    {
        this.vocab = vocab;
        vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        cacheBySpan = cache.GetAlternateLookup<ReadOnlySpan<char>>();
        this.byteFallback = byteFallback;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        prefix = continuingSubwordPrefix;
        suffix = endOfWordSuffix;
        int maxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        idToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab) idToToken[id] = token;

        if (unkToken is not null)
            unkId = vocab.TryGetValue(unkToken, out int u) ? u : throw badUnk(unkToken);

        int prefixLength = prefix?.Length ?? 0;
        merges = new Dictionary<long, long>(mergeList.Count);
        for (int rank = 0; rank < mergeList.Count; rank++)
        {
            var (a, b) = mergeList[rank];
            if (!vocab.TryGetValue(a, out int aId)) throw badMerge(rank, $"\"{a}\" is not in the vocabulary");
            if (!vocab.TryGetValue(b, out int bId)) throw badMerge(rank, $"\"{b}\" is not in the vocabulary");
            if (b.Length < prefixLength) throw badMerge(rank, $"\"{b}\" is shorter than continuing_subword_prefix");
            string merged = a + b[prefixLength..];
            if (!vocab.TryGetValue(merged, out int newId)) throw badMerge(rank, $"the merged token \"{merged}\" is not in the vocabulary");
            merges[Key(aId, bId)] = ((long)rank << 32) | (uint)newId;
        }

        bmpCharIds = new int[char.MaxValue + 1];
        Array.Fill(bmpCharIds, -1);
        if (prefix is null && suffix is null)
            foreach (var (token, id) in vocab)
                if (token.Length == 1 && !char.IsSurrogate(token[0])) bmpCharIds[token[0]] = id;
        byteIds = new int[256];
        for (int b = 0; b < 256; b++) byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public int VocabSize => vocab.Count;

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)idToToken.Length ? idToToken[id] : null;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Tokenize(ReadOnlySpan<char> word, List<int> output)
    {
        if (word.IsEmpty) return;
        if (ignoreMerges && vocabBySpan.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }
        if (cacheBySpan.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        var ids = MergeWord(word);
        if (word.Length < MaxCachedLength && Volatile.Read(ref cacheCount) < CacheCapacity && cache.TryAdd(word.ToString(), ids))
            Interlocked.Increment(ref cacheCount);
        output.AddRange(ids);
    }

    private struct Symbol
    {
        public int Id, Prev, Next;
        public bool Removed;
    }

    private sealed class Scratch
    {
        public Symbol[] Symbols = new Symbol[64];
        public readonly PriorityQueue<(int Pos, int NewId), long> Queue = new();
    }

    private int[] MergeWord(ReadOnlySpan<char> word)
    {
        var s = scratch ??= new Scratch();
        int count = 0;
        int pendingUnk = 0; // characters folded into one pending unknown token (fuse_unk)
        int i = 0;
        while (i < word.Length)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var ch = word.Slice(i, len);
            bool first = i == 0, last = i + len == word.Length;
            i += len;
            int id = LookupChar(ch, first, last);
            if (id >= 0)
            {
                FlushUnk(ref s, ref count, ref pendingUnk);
                Add(ref s, ref count, id);
                continue;
            }
            if (byteFallback && TryAddBytes(ref s, ref count, ch, first, last)) continue;
            if (unkId is int unk)
            {
                if (pendingUnk > 0 && !fuseUnk) Add(ref s, ref count, unk);
                pendingUnk = 1;
            }
        }
        FlushUnk(ref s, ref count, ref pendingUnk);
        MergeAll(s, count);
        int alive = 0;
        for (int k = 0; k < count; k++) if (!s.Symbols[k].Removed) alive++;
        var result = new int[alive];
        for (int k = 0, j = 0; k < count; k++) if (!s.Symbols[k].Removed) result[j++] = s.Symbols[k].Id;
        return result;
    }

    private void FlushUnk(ref Scratch s, ref int count, ref int pendingUnk)
    {
        if (pendingUnk == 0) return;
        Add(ref s, ref count, unkId!.Value);
        pendingUnk = 0;
    }

    private int LookupChar(ReadOnlySpan<char> ch, bool first, bool last)
    {
        if (prefix is null && suffix is null)
        {
            if (ch.Length == 1) return bmpCharIds[ch[0]];
            return vocabBySpan.TryGetValue(ch, out int id) ? id : -1;
        }
        string key = (!first && prefix is not null ? prefix : "") + ch.ToString() + (last && suffix is not null ? suffix : "");
        return vocab.TryGetValue(key, out int v) ? v : -1;
    }

    /// <summary>HF builds the byte tokens from the character with its prefix/suffix; all must exist.</summary>
    private bool TryAddBytes(ref Scratch s, ref int count, ReadOnlySpan<char> ch, bool first, bool last)
    {
        string text = (!first && prefix is not null ? prefix : "") + ch.ToString() + (last && suffix is not null ? suffix : "");
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        foreach (byte b in bytes) if (byteIds[b] < 0) return false;
        foreach (byte b in bytes) Add(ref s, ref count, byteIds[b]);
        return true;
    }

    private static void Add(ref Scratch s, ref int count, int id)
    {
        if (count == s.Symbols.Length) Array.Resize(ref s.Symbols, count * 2);
        s.Symbols[count] = new Symbol { Id = id, Prev = count - 1, Next = count + 1 };
        count++;
    }

    /// <summary>HF <c>Word::merge_all</c>: pops (rank, position) minima; stale entries are recognised and skipped.</summary>
    private void MergeAll(Scratch s, int count)
    {
        if (count < 2) return;
        var sym = s.Symbols;
        sym[count - 1].Next = -1;
        var queue = s.Queue;
        queue.Clear();
        for (int k = 0; k + 1 < count; k++) Push(queue, k, sym[k].Id, sym[k + 1].Id);

        while (queue.TryDequeue(out var top, out _))
        {
            ref var left = ref sym[top.Pos];
            if (left.Removed || left.Next < 0) continue;
            int nextPos = left.Next;
            ref var right = ref sym[nextPos];
            if (!merges.TryGetValue(Key(left.Id, right.Id), out long m) || (int)m != top.NewId) continue;

            left.Id = top.NewId;
            left.Next = right.Next;
            right.Removed = true;
            if (right.Next >= 0) sym[right.Next].Prev = top.Pos;
            if (left.Prev >= 0) Push(queue, left.Prev, sym[left.Prev].Id, left.Id);
            if (left.Next >= 0) Push(queue, top.Pos, left.Id, sym[left.Next].Id);
        }
    }

    private void Push(PriorityQueue<(int Pos, int NewId), long> queue, int pos, int a, int b)
    {
        if (merges.TryGetValue(Key(a, b), out long m))
            queue.Enqueue((pos, (int)m), (m & unchecked((long)0xFFFF_FFFF_0000_0000)) | (uint)pos);
    }
}
