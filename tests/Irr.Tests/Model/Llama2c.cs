using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Tests.IO;

namespace Irr.Tests.Model;

/// <summary>
/// A llama2.c checkpoint in its legacy layout (karpathy/llama2.c run.c, <c>read_checkpoint</c>): 7 int32 (dim, hidden_dim,
/// n_layers, n_heads, n_kv_heads, vocab_size — negative: an unshared classifier —, seq_len), then float32 token_embedding
/// [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim],
/// rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real and
/// freq_cis_imag [seq_len, head_size/2] (skipped), and wcls [vocab, dim] when not shared. Read here, independently of irr.
/// </summary>
internal sealed class Llama2cModel
{
    public int Dim, Hidden, Layers, Heads, KvHeads, Vocab, SeqLen;
    public bool Shared;
    public float[] Embedding = [], RmsAtt = [], Wq = [], Wk = [], Wv = [], Wo = [], RmsFfn = [], W1 = [], W2 = [], W3 = [], RmsFinal = [], Wcls = [];

    public int HeadSize => Dim / Heads;

    public int KvDim => HeadSize * KvHeads;

    public static Llama2cModel Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int Int(int i) => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4 * i));
        var m = new Llama2cModel { Dim = Int(0), Hidden = Int(1), Layers = Int(2), Heads = Int(3), KvHeads = Int(4), Vocab = Math.Abs(Int(5)), SeqLen = Int(6), Shared = Int(5) > 0 };
        int offset = 28;
        float[] Take(long n)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset + (int)(4 * i)));
            offset += (int)(4 * n);
            return a;
        }
        int L = m.Layers, d = m.Dim, kv = m.KvDim, h = m.Hidden;
        m.Embedding = Take((long)m.Vocab * d);
        m.RmsAtt = Take(L * d);
        m.Wq = Take((long)L * d * d);
        m.Wk = Take((long)L * kv * d);
        m.Wv = Take((long)L * kv * d);
        m.Wo = Take((long)L * d * d);
        m.RmsFfn = Take(L * d);
        m.W1 = Take((long)L * h * d);
        m.W2 = Take((long)L * d * h);
        m.W3 = Take((long)L * h * d);
        m.RmsFinal = Take(d);
        Take((long)m.SeqLen * m.HeadSize); // freq_cis_real and freq_cis_imag, seq_len · head_size/2 each
        m.Wcls = m.Shared ? m.Embedding : Take((long)m.Vocab * d);
        if (offset != bytes.Length) throw new InvalidDataException($"{path}: {bytes.Length - offset} bytes left after the weights");
        return m;
    }

    /// <summary>
    /// Greedy decoding in float64 with llama2.c's own forward (run.c <c>forward</c>): RMSNorm (eps 1e-5), RoPE on the
    /// interleaved pairs (i, i+1) of each head with θ = 10000, grouped-query attention, SwiGLU. Returns the new ids and, per
    /// step, the gap between the best and second-best logits. Stops at BOS (id 1), as run.c does, or after <paramref name="steps"/>.
    /// </summary>
    public (List<int> Ids, List<double> Gaps) Greedy(IReadOnlyList<int> prompt, int steps)
    {
        int d = Dim, hs = HeadSize, kvDim = KvDim, kvMul = Heads / KvHeads;
        var keys = new double[Layers][][];
        var values = new double[Layers][][];
        for (int l = 0; l < Layers; l++) { keys[l] = new double[SeqLen][]; values[l] = new double[SeqLen][]; }
        var ids = new List<int>();
        var gaps = new List<double>();
        var tokens = new List<int>(prompt);
        for (int pos = 0; pos < tokens.Count && pos < SeqLen; pos++)
        {
            var logits = Forward(tokens[pos], pos, keys, values, d, hs, kvDim, kvMul);
            if (pos < tokens.Count - 1) continue;
            if (ids.Count >= steps) break;
            int best = 0;
            for (int i = 1; i < Vocab; i++) if (logits[i] > logits[best]) best = i;
            double second = double.NegativeInfinity;
            for (int i = 0; i < Vocab; i++) if (i != best) second = Math.Max(second, logits[i]);
            gaps.Add(logits[best] - second);
            if (best == 1) break;
            ids.Add(best);
            tokens.Add(best);
        }
        return (ids, gaps);
    }

    /// <summary>log p(ids[t+1] | ids[..t]) for every t, in float64 (the same forward as <see cref="Greedy"/>).</summary>
    public double[] LogProbs(IReadOnlyList<int> ids)
    {
        int d = Dim, hs = HeadSize, kvDim = KvDim, kvMul = Heads / KvHeads;
        var keys = new double[Layers][][];
        var values = new double[Layers][][];
        for (int l = 0; l < Layers; l++) { keys[l] = new double[SeqLen][]; values[l] = new double[SeqLen][]; }
        var result = new double[ids.Count - 1];
        for (int pos = 0; pos + 1 < ids.Count; pos++)
        {
            var logits = Forward(ids[pos], pos, keys, values, d, hs, kvDim, kvMul);
            double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
            result[pos] = logits[ids[pos + 1]] - max - Math.Log(z);
        }
        return result;
    }

    private double[] Forward(int token, int pos, double[][][] keys, double[][][] values, int d, int hs, int kvDim, int kvMul)
    {
        var x = new double[d];
        for (int i = 0; i < d; i++) x[i] = Embedding[(long)token * d + i];
        for (int l = 0; l < Layers; l++)
        {
            var xb = RmsNorm(x, RmsAtt, l * d);
            var q = MatVec(Wq, (long)l * d * d, xb, d, d);
            var k = MatVec(Wk, (long)l * kvDim * d, xb, kvDim, d);
            var v = MatVec(Wv, (long)l * kvDim * d, xb, kvDim, d);
            for (int i = 0; i < d; i += 2)
            {
                int headDim = i % hs;
                double freq = 1.0 / Math.Pow(10000.0, headDim / (double)hs), angle = pos * freq, c = Math.Cos(angle), s = Math.Sin(angle);
                Rotate(q, i, c, s);
                if (i < kvDim) Rotate(k, i, c, s);
            }
            keys[l][pos] = k;
            values[l][pos] = v;
            var attended = new double[d];
            for (int h = 0; h < Heads; h++)
            {
                int kvOffset = h / kvMul * hs;
                var scores = new double[pos + 1];
                double max = double.NegativeInfinity;
                for (int t = 0; t <= pos; t++)
                {
                    double dot = 0;
                    for (int i = 0; i < hs; i++) dot += q[h * hs + i] * keys[l][t][kvOffset + i];
                    scores[t] = dot / Math.Sqrt(hs);
                    max = Math.Max(max, scores[t]);
                }
                double z = 0;
                for (int t = 0; t <= pos; t++) z += scores[t] = Math.Exp(scores[t] - max);
                for (int t = 0; t <= pos; t++)
                    for (int i = 0; i < hs; i++) attended[h * hs + i] += scores[t] / z * values[l][t][kvOffset + i];
            }
            var o = MatVec(Wo, (long)l * d * d, attended, d, d);
            for (int i = 0; i < d; i++) x[i] += o[i];
            xb = RmsNorm(x, RmsFfn, l * d);
            var h1 = MatVec(W1, (long)l * Hidden * d, xb, Hidden, d);
            var h3 = MatVec(W3, (long)l * Hidden * d, xb, Hidden, d);
            for (int i = 0; i < Hidden; i++) h1[i] = h1[i] / (1 + Math.Exp(-h1[i])) * h3[i];
            var down = MatVec(W2, (long)l * d * Hidden, h1, d, Hidden);
            for (int i = 0; i < d; i++) x[i] += down[i];
        }
        return MatVec(Wcls, 0, RmsNorm(x, RmsFinal, 0), Vocab, d);
    }

    private static void Rotate(double[] v, int i, double c, double s)
    {
        double v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * c - v1 * s;
        v[i + 1] = v0 * s + v1 * c;
    }

    private double[] RmsNorm(double[] x, float[] weight, int offset)
    {
        double ss = 0;
        foreach (double a in x) ss += a * a;
        double scale = 1 / Math.Sqrt(ss / x.Length + 1e-5);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = weight[offset + i] * (x[i] * scale);
        return y;
    }

    private static double[] MatVec(float[] w, long offset, double[] x, int rows, int cols)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double acc = 0;
            for (int c = 0; c < cols; c++) acc += w[offset + (long)r * cols + c] * x[c];
            y[r] = acc;
        }
        return y;
    }

    /// <summary>
    /// Writes a Hugging Face Llama directory: config.json, model.safetensors (float32; the classifier tied when shared) and
    /// the tokenizer of <paramref name="tokenizer"/> (tokenizer.json, and tokenizer_config.json without a chat template).
    /// wq and wk rows are permuted from llama2.c's interleaved RoPE pairs to transformers' rotate_half halves, as llama2.c's
    /// export.py (<c>permute_reverse</c>) and transformers' convert_llama_weights_to_hf.py (<c>permute</c>) do:
    /// HF row h·hs + c·hs/2 + i = llama2.c row h·hs + 2i + c.
    /// </summary>
    public void WriteHuggingFace(string dir, Llama2cTokenizer tokenizer)
    {
        Directory.CreateDirectory(dir);
        int d = Dim, kv = KvDim;
        var tensors = new List<(string Name, long[] Shape, float[] Data)> { ("model.embed_tokens.weight", [Vocab, d], Embedding) };
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            tensors.Add((p + "input_layernorm.weight", [d], RmsAtt[(l * d)..((l + 1) * d)]));
            tensors.Add((p + "self_attn.q_proj.weight", [d, d], Permute(Slice(Wq, l, d * d), Heads, d)));
            tensors.Add((p + "self_attn.k_proj.weight", [kv, d], Permute(Slice(Wk, l, kv * d), KvHeads, d)));
            tensors.Add((p + "self_attn.v_proj.weight", [kv, d], Slice(Wv, l, kv * d)));
            tensors.Add((p + "self_attn.o_proj.weight", [d, d], Slice(Wo, l, d * d)));
            tensors.Add((p + "post_attention_layernorm.weight", [d], RmsFfn[(l * d)..((l + 1) * d)]));
            tensors.Add((p + "mlp.gate_proj.weight", [Hidden, d], Slice(W1, l, Hidden * d)));
            tensors.Add((p + "mlp.down_proj.weight", [d, Hidden], Slice(W2, l, d * Hidden)));
            tensors.Add((p + "mlp.up_proj.weight", [Hidden, d], Slice(W3, l, Hidden * d)));
        }
        tensors.Add(("model.norm.weight", [d], RmsFinal));
        if (!Shared) tensors.Add(("lm_head.weight", [Vocab, d], Wcls));

        var header = new JsonObject();
        long at = 0;
        using var data = new MemoryStream();
        foreach (var (name, shape, values) in tensors)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray([.. shape.Select(s => (JsonNode)s)]),
                ["data_offsets"] = new JsonArray(at, at + 4L * values.Length),
            };
            data.Write(RawSafetensors.Floats(values));
            at += 4L * values.Length;
        }
        RawSafetensors.Write(Path.Combine(dir, "model.safetensors"), header.ToJsonString(), data.ToArray());
        File.WriteAllText(Path.Combine(dir, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = d,
            ["intermediate_size"] = Hidden,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["vocab_size"] = Vocab,
            ["max_position_embeddings"] = SeqLen,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["tie_word_embeddings"] = Shared,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = "float32",
        }.ToJsonString());
        tokenizer.WriteHuggingFace(dir);
    }

    private static float[] Slice(float[] all, int layer, int size) => all[(layer * size)..((layer + 1) * size)];

    private float[] Permute(float[] w, int heads, int cols)
    {
        int hs = HeadSize;
        var result = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < hs / 2; i++)
                    Array.Copy(w, (long)(h * hs + 2 * i + c) * cols, result, (long)(h * hs + c * hs / 2 + i) * cols, cols);
        return result;
    }
}

/// <summary>
/// llama2.c's tokenizer file (tokenizer.py <c>export</c>, read by run.c <c>build_tokenizer</c>): int32 max_token_length,
/// then per token a float32 score, an int32 length and the piece's bytes (SentencePiece's "▁" written as a space; ids 0–2
/// are &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;; ids 3–258 the byte pieces &lt;0x00&gt;…&lt;0xFF&gt;).
/// </summary>
internal sealed class Llama2cTokenizer
{
    public required string[] Pieces { get; init; }

    public required float[] Scores { get; init; }

    public static Llama2cTokenizer Read(string path, int vocab)
    {
        var bytes = File.ReadAllBytes(path);
        int offset = 4;
        var pieces = new string[vocab];
        var scores = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            scores[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset));
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset + 4));
            pieces[i] = Encoding.UTF8.GetString(bytes, offset + 8, length);
            offset += 8 + length;
        }
        return new Llama2cTokenizer { Pieces = pieces, Scores = scores };
    }

    /// <summary>
    /// run.c's <c>encode</c>: a dummy-prefix space when the text is not empty, each UTF-8 character's piece (bytes + 3 when
    /// it has none), then repeatedly the adjacent pair whose merged piece has the best score; BOS first.
    /// </summary>
    public List<int> Encode(string text)
    {
        var lookup = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = Pieces.Length - 1; i >= 0; i--) lookup[Pieces[i]] = i;
        var ids = new List<int> { 1 };
        if (text.Length > 0) ids.Add(lookup[" "]);
        foreach (var rune in text.EnumerateRunes())
        {
            string ch = rune.ToString();
            if (lookup.TryGetValue(ch, out int id)) ids.Add(id);
            else foreach (byte b in Encoding.UTF8.GetBytes(ch)) ids.Add(b + 3);
        }
        while (true)
        {
            double best = double.NegativeInfinity;
            int at = -1, merged = -1;
            for (int i = 1; i + 1 < ids.Count; i++)
                if (lookup.TryGetValue(Pieces[ids[i]] + Pieces[ids[i + 1]], out int m) && Scores[m] > best)
                    (best, at, merged) = (Scores[m], i, m);
            if (at < 0) break;
            ids[at] = merged;
            ids.RemoveAt(at + 1);
        }
        return ids;
    }

    /// <summary>run.c's <c>decode</c> of a piece after <paramref name="previous"/>: the leading space dropped after BOS, &lt;0xXX&gt; as its byte.</summary>
    public string Piece(int previous, int id)
    {
        string piece = Pieces[id];
        if (previous == 1 && piece.StartsWith(' ')) piece = piece[1..];
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece.EndsWith('>'))
            piece = ((char)Convert.ToByte(piece[3..5], 16)).ToString(); // tok512's text is ASCII
        return piece;
    }

    /// <summary>
    /// A transformers Llama tokenizer for these pieces, as its <c>LlamaConverter</c> writes one
    /// (<see cref="Irr.Tests.Text.TinyVocabularies.Llama"/>: BPE with byte_fallback; normalizer Prepend "▁" + Replace " " → "▁";
    /// decoder Replace, ByteFallback, Fuse, Strip; the post-processor adds &lt;s&gt;): the vocabulary with " " as "▁", merges of
    /// every split of a piece into two pieces, ordered by that piece's score (SentencePieceExtractor). tokenizer_config.json
    /// has no chat template.
    /// </summary>
    public void WriteHuggingFace(string dir)
    {
        string Sp(string piece) => piece.Replace(' ', '▁');
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int i = 3; i < Pieces.Length; i++) vocab[Sp(Pieces[i])] = i;
        var byPiece = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 3; i < Pieces.Length; i++) byPiece[Sp(Pieces[i])] = i;
        var merges = new List<(int Rank, int Left, int Right, string Text)>();
        foreach (var (piece, m) in byPiece)
            for (int k = 1; k < piece.Length; k++)
                if (m >= 259 && byPiece.TryGetValue(piece[..k], out int l) && byPiece.TryGetValue(piece[k..], out int r))
                    merges.Add((m, l, r, piece[..k] + " " + piece[k..]));
        var ordered = merges.OrderByDescending(x => Scores[x.Rank]).ThenBy(x => x.Rank).ThenBy(x => x.Left).ThenBy(x => x.Right).Select(x => (JsonNode)x.Text).ToArray();
        var json = Irr.Tests.Text.TinyVocabularies.Llama(vocab, new JsonArray(ordered));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """
            {"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
             "clean_up_tokenization_spaces": false, "legacy": false, "tokenizer_class": "LlamaTokenizer"}
            """);
    }
}
