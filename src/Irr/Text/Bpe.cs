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
    private const int MaxCachedLength = 100; // longer words rarely repeat (HF: 256); the limit does not change results

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabBySpan;
    private readonly string?[] idToToken;
    private readonly PairTable merges; // (left id, right id) -> (rank << 32 | new id)
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
        // An empty prefix or suffix (Qwen writes "") changes nothing.
        prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        int maxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        idToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab) idToToken[id] = token;

        if (unkToken is not null)
            unkId = vocab.TryGetValue(unkToken, out int u) ? u : throw badUnk(unkToken);

        int prefixLength = prefix?.Length ?? 0;
        merges = new PairTable(mergeList.Count);
        for (int rank = 0; rank < mergeList.Count; rank++)
        {
            var (a, b) = mergeList[rank];
            if (!vocab.TryGetValue(a, out int aId)) throw badMerge(rank, $"\"{a}\" is not in the vocabulary");
            if (!vocab.TryGetValue(b, out int bId)) throw badMerge(rank, $"\"{b}\" is not in the vocabulary");
            if (b.Length < prefixLength) throw badMerge(rank, $"\"{b}\" is shorter than continuing_subword_prefix");
            string merged = a + b[prefixLength..];
            if (!vocab.TryGetValue(merged, out int newId)) throw badMerge(rank, $"the merged token \"{merged}\" is not in the vocabulary");
            merges.Set(Key(aId, bId), ((long)rank << 32) | (uint)newId);
        }

        bmpCharIds = new int[char.MaxValue + 1];
        Array.Fill(bmpCharIds, -1);
        if (prefix is null && suffix is null)
            foreach (var (token, id) in vocab)
                if (token.Length == 1 && !char.IsSurrogate(token[0])) bmpCharIds[token[0]] = id;
        // SentencePiece-style vocabularies (Llama-2, Mistral) have "▁" only at the start of a token or in
        // tokens of "▁" alone. Then no merge can join a character to a following "▁", so a word can be cut
        // before each run of "▁" and each part merged on its own with the same result (the merges inside
        // one part never depend on another). With no pre-tokenizer the whole text is one word; cut, its
        // parts are ordinary words the cache can serve.
        SplitAtMetaspaceRuns = !ignoreMerges && prefix is null && suffix is null && vocab.ContainsKey("\u2581")
            && !vocab.Keys.Any(t => t.Length > 1 && t.IndexOf('\u2581', 1) > 0 && t.AsSpan().ContainsAnyExcept('\u2581'));
        byteIds = new int[256];
        for (int b = 0; b < 256; b++) byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    /// <summary>Whether words are cut before each run of "▁" (see the constructor); tests turn it off to compare.</summary>
    internal bool SplitAtMetaspaceRuns { get; set; }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>
    /// An open-addressing hash table from a pair key (left &lt;&lt; 32 | right, never negative) to a value, for
    /// the merges: the hottest lookup of encoding. (Dictionary&lt;long, …&gt; hashes a long as hi ^ lo, which
    /// sends every pair with the same left ^ right to one bucket.) Fibonacci hashing, linear probing.
    /// </summary>
    private sealed class PairTable
    {
        private readonly long[] keys;
        private readonly long[] values;
        private readonly int shift;

        public PairTable(int count)
        {
            int bits = Math.Max(4, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)Math.Max(1, count) * 2));
            keys = new long[1 << bits];
            values = new long[1 << bits];
            Array.Fill(keys, -1L);
            shift = 64 - bits;
        }

        private int Slot(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> shift);

        /// <summary>Adds or replaces (a later duplicate merge replaces an earlier one, as in HF's map).</summary>
        public void Set(long key, long value)
        {
            int mask = keys.Length - 1;
            for (int i = Slot(key); ; i = (i + 1) & mask)
            {
                if (keys[i] == key || keys[i] < 0)
                {
                    keys[i] = key;
                    values[i] = value;
                    return;
                }
            }
        }

        public bool TryGetValue(long key, out long value)
        {
            int mask = keys.Length - 1;
            for (int i = Slot(key); ; i = (i + 1) & mask)
            {
                long k = keys[i];
                if (k == key)
                {
                    value = values[i];
                    return true;
                }
                if (k < 0)
                {
                    value = 0;
                    return false;
                }
            }
        }
    }

    public int VocabSize => vocab.Count;

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)idToToken.Length ? idToToken[id] : null;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Tokenize(ReadOnlySpan<char> word, List<int> output)
    {
        if (!SplitAtMetaspaceRuns)
        {
            TokenizeWord(word, output);
            return;
        }
        int start = 0;
        for (int i = 1; i < word.Length; i++)
        {
            if (word[i] != '\u2581' || word[i - 1] == '\u2581') continue;
            TokenizeWord(word[start..i], output);
            start = i;
        }
        TokenizeWord(word[start..], output);
    }

    private void TokenizeWord(ReadOnlySpan<char> word, List<int> output)
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
        public readonly MergeQueue Queue = new();
    }

    /// <summary>A binary min-heap of candidate merges keyed by (rank &lt;&lt; 32 | position).</summary>
    private sealed class MergeQueue
    {
        private (long Key, int NewId)[] heap = new (long, int)[64];
        private int count;

        public void Clear() => count = 0;

        public void Push(long key, int newId)
        {
            if (count == heap.Length) Array.Resize(ref heap, count * 2);
            int i = count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (heap[parent].Key <= key) break;
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = (key, newId);
        }

        public bool TryPop(out long key, out int newId)
        {
            if (count == 0)
            {
                key = 0;
                newId = 0;
                return false;
            }
            (key, newId) = heap[0];
            var last = heap[--count];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= count) break;
                if (child + 1 < count && heap[child + 1].Key < heap[child].Key) child++;
                if (heap[child].Key >= last.Key) break;
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return true;
        }
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

        while (queue.TryPop(out long key, out int newId))
        {
            int pos = (int)key;
            ref var left = ref sym[pos];
            if (left.Removed || left.Next < 0) continue;
            int nextPos = left.Next;
            ref var right = ref sym[nextPos];
            // A stale entry: the pair at this position has changed since it was queued.
            if (!merges.TryGetValue(Key(left.Id, right.Id), out long m) || (int)m != newId) continue;

            left.Id = newId;
            left.Next = right.Next;
            right.Removed = true;
            if (right.Next >= 0) sym[right.Next].Prev = pos;
            if (left.Prev >= 0) Push(queue, left.Prev, sym[left.Prev].Id, left.Id);
            if (left.Next >= 0) Push(queue, pos, left.Id, sym[left.Next].Id);
        }
    }

    private void Push(MergeQueue queue, int pos, int a, int b)
    {
        if (merges.TryGetValue(Key(a, b), out long m))
            queue.Push((m & unchecked((long)0xFFFF_FFFF_0000_0000)) | (uint)pos, (int)m);
    }
}
