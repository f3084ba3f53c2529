using System.Numerics.Tensors;
using Irr.IO;

namespace Irr.Model;

/// <summary>Called with the input of a target linear module (rows × columns) as a layer runs.</summary>
/// <param name="layer">Decoder layer index.</param>
/// <param name="module">q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj.</param>
/// <param name="input">The module's input activations, row-major (T × in).</param>
/// <param name="rows">T.</param>
/// <param name="columns">The module's input size.</param>
public delegate void ModuleInputHook(int layer, string module, ReadOnlySpan<float> input, int rows, int columns);

/// <summary>The loss of a batch and, per position, the log-probability of its target.</summary>
/// <param name="Loss">Mean next-token cross-entropy over labelled targets (NaN if there are none).</param>
/// <param name="LabelledTokens">Number of labelled targets.</param>
/// <param name="TargetLogProbs">log p(target) at each position (T); NaN where the target is −100.</param>
public sealed record LossResult(double Loss, int LabelledTokens, float[] TargetLogProbs);

/// <summary>
/// A Llama-family decoder (<c>LlamaForCausalLM</c>, <c>MistralForCausalLM</c>, <c>Qwen2ForCausalLM</c>)
/// computed in float32 as Hugging Face does, over packed batches of variable-length sequences.
/// Weights come from an <see cref="IWeightSource"/>, one matrix at a time, so a checkpoint is
/// streamed rather than loaded. The backward pass keeps only each layer's input (activation
/// checkpointing) and recomputes a layer's activations when it reaches it, so memory grows with one
/// layer's activations, not the model's.
/// </summary>
public sealed class Transformer
{
    /// <summary>
    /// Logits formed at once: at most 256 rows (measured faster than larger chunks) and 32 MB, which
    /// bounds the rows × V buffer of the head for large vocabularies.
    /// </summary>
    private const int LogitRows = 256, LogitBudget = 1 << 23;

    private readonly Rope rope;
    private float[] scratch = [];

    /// <summary>A model over <paramref name="weights"/>, with optional trainable LoRA matrices.</summary>
    public Transformer(IWeightSource weights, LoraWeights? lora = null)
    {
        Weights = weights;
        Config = weights.Config;
        Lora = lora;
        rope = new Rope(Config);
    }

    /// <summary>The weights.</summary>
    public IWeightSource Weights { get; }

    /// <summary>The configuration.</summary>
    public ModelConfig Config { get; }

    /// <summary>LoRA matrices in use, if any.</summary>
    public LoraWeights? Lora { get; }

    private string LmHead => Config.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";

    // ---- forward ------------------------------------------------------------------------------

    /// <summary>The token embeddings of a batch (T, C).</summary>
    public float[] Embed(Batch batch)
    {
        int c = Config.HiddenSize;
        var x = new float[batch.TokenCount * c];
        // Read only the embedding rows the batch uses.
        foreach (var group in Enumerable.Range(0, batch.TokenCount).GroupBy(t => batch.Tokens[t]))
        {
            if ((uint)group.Key >= (uint)Config.VocabSize)
                throw new IrrException($"token id {group.Key} is outside the vocabulary of {Config.VocabSize}");
            var row = x.AsSpan(group.First() * c, c);
            Weights.LoadRows("model.embed_tokens.weight", group.Key, 1, row);
            foreach (int t in group.Skip(1)) row.CopyTo(x.AsSpan(t * c, c));
        }
        return x;
    }

    /// <summary>
    /// Runs decoder layer <paramref name="layer"/> on <paramref name="hidden"/> (T, C) in place,
    /// calling <paramref name="hook"/> with each linear module's input. With <paramref name="stopAfter"/>
    /// the pass ends right after the hook of that module (only the module inputs are wanted; then
    /// <paramref name="hidden"/> is left unchanged or partly updated and must not be used).
    /// </summary>
    public void LayerForward(int layer, Span<float> hidden, Batch batch, ModuleInputHook? hook = null, string? stopAfter = null)
    {
        try { Forward(layer, hidden, batch, new LayerState(Config, batch, keep: false, pool), hook, stopAfter); }
        finally { pool.ReturnAll(); }
    }

    /// <summary>The final RMSNorm of the last hidden states (T, C), in place.</summary>
    public void FinalNorm(Span<float> hidden, int rows)
    {
        var w = LoadCopy("model.norm.weight");
        var rstd = new float[rows];
        var normed = new float[hidden.Length];
        Layers.RmsNormForward(normed, rstd, hidden, w, rows, Config.HiddenSize, (float)Config.RmsNormEps);
        normed.CopyTo(hidden);
    }

    /// <summary>Hidden states after every layer and the final norm (T, C).</summary>
    public float[] Hidden(Batch batch, ModuleInputHook? hook = null)
    {
        var x = Embed(batch);
        try
        {
            var state = new LayerState(Config, batch, keep: false, pool); // buffers shared by all layers
            for (int l = 0; l < Config.NumHiddenLayers; l++) Forward(l, x, batch, state, hook);
        }
        finally { pool.ReturnAll(); }
        FinalNorm(x, batch.TokenCount);
        return x;
    }

    /// <summary>
    /// Runs new tokens through the model with a KV cache: <paramref name="newTokens"/>[i] continues
    /// cache sequence <paramref name="cacheSequences"/>[i] (from its cached length), and is stored
    /// in the cache. Returns the logits (S, V) of each sequence's last new token.
    /// </summary>
    public float[] NextTokenLogits(IReadOnlyList<IReadOnlyList<int>> newTokens, KvCache cache, IReadOnlyList<int> cacheSequences)
    {
        var batch = Batch.Create(newTokens, null, cacheSequences.Select(cache.Length).ToArray());
        var state = new LayerState(Config, batch, keep: false, new BufferPool(), withProbs: false) { Cache = cache };
        state.CacheSequenceOfToken = new int[batch.TokenCount];
        for (int i = 0; i < batch.SequenceCount; i++)
            for (int t = batch.Starts[i]; t < batch.Starts[i + 1]; t++) state.CacheSequenceOfToken[t] = cacheSequences[i];
        var x = Embed(batch);
        for (int l = 0; l < Config.NumHiddenLayers; l++) Forward(l, x, batch, state, null);
        for (int i = 0; i < batch.SequenceCount; i++) cache.SetLength(cacheSequences[i], cache.Length(cacheSequences[i]) + newTokens[i].Count);
        FinalNorm(x, batch.TokenCount);
        return LogitsOf(x, batch.Starts.Skip(1).Select(e => e - 1).ToArray());
    }

    /// <summary>Logits (rows, V) for the positions <paramref name="rows"/> of final hidden states (T, C).</summary>
    public float[] LogitsOf(ReadOnlySpan<float> hidden, ReadOnlySpan<int> rows)
    {
        int c = Config.HiddenSize, v = Config.VocabSize;
        var h = new float[rows.Length * c];
        for (int i = 0; i < rows.Length; i++) hidden.Slice(rows[i] * c, c).CopyTo(h.AsSpan(i * c, c));
        var logits = new float[rows.Length * v];
        var w = Weights.Load(LmHead, ref scratch);
        Layers.LinearForward(logits, h, w, [], rows.Length, c, v);
        return logits;
    }

    /// <summary>Logits of every position (T, V).</summary>
    public float[] Logits(Batch batch)
    {
        var h = Hidden(batch);
        return LogitsOf(h, Enumerable.Range(0, batch.TokenCount).ToArray());
    }

    /// <summary>The mean next-token loss of a labelled batch, and each target's log-probability.</summary>
    public LossResult Loss(Batch batch)
    {
        var h = Hidden(batch);
        return HeadLoss(h, batch.ShiftedTargets(), null, default);
    }

    // ---- backward -----------------------------------------------------------------------------

    /// <summary>
    /// Forward and backward on a labelled batch: adds <c>lossScale · ∂(mean loss)/∂θ</c> into
    /// <paramref name="gradients"/> for the parameters it holds (base weights and LoRA matrices by
    /// name; others are not computed). Returns the loss.
    /// </summary>
    /// <param name="batch">The labelled batch.</param>
    /// <param name="gradients">Where the gradients go (accumulated).</param>
    /// <param name="lossScale">Multiplies the gradients.</param>
    /// <param name="afterLayer">Called after the backward pass of each decoder layer, in reverse order,
    /// when that layer's gradients are complete.</param>
    public LossResult ForwardBackward(Batch batch, Gradients gradients, float lossScale = 1f, Action<int>? afterLayer = null)
    {
        try { return ForwardBackwardPooled(batch, gradients, lossScale, afterLayer); }
        finally { pool.ReturnAll(); }
    }

    private LossResult ForwardBackwardPooled(Batch batch, Gradients gradients, float lossScale, Action<int>? afterLayer)
    {
        int t = batch.TokenCount, c = Config.HiddenSize, layers = Config.NumHiddenLayers;
        // Keep every layer's activations when they fit the budget (backward ≈ 2 forwards); otherwise
        // keep only each layer's input and recompute the rest layer by layer (≈ 3 forwards).
        bool keepAll = LayerState.KeptBytes(Config, batch, Lora) * layers <= ActivationMemoryBudget;
        var inputs = new float[layers + 1][];
        var states = new LayerState[layers];
        var x = Embed(batch);
        var shared = keepAll ? null : new LayerState(Config, batch, keep: false, pool);
        for (int l = 0; l < layers; l++)
        {
            if (keepAll) states[l] = new LayerState(Config, batch, keep: true, pool);
            else
            {
                inputs[l] = pool.Rent(t * c);
                x.CopyTo(inputs[l], 0);
            }
            Forward(l, x, batch, keepAll ? states[l] : shared!, null);
        }
        inputs[layers] = (float[])x.Clone();
        var finalWeight = LoadCopy("model.norm.weight");
        var rstd = new float[t];
        var h = new float[t * c];
        Layers.RmsNormForward(h, rstd, x, finalWeight, t, c, (float)Config.RmsNormEps);

        // Head and loss.
        var dh = new float[t * c];
        var result = HeadLoss(h, batch.ShiftedTargets(), gradients, (dh, lossScale));

        // Final norm.
        var dx = new float[t * c];
        Layers.RmsNormBackward(dx, gradients.Of("model.norm.weight"), dh, inputs[layers], finalWeight, rstd, t, c);

        // Layers in reverse (recomputing each one's activations from its checkpoint if not kept).
        var buffers = new GradientBuffers();
        var replay = keepAll ? null : new LayerState(Config, batch, keep: true, pool);
        for (int l = layers - 1; l >= 0; l--)
        {
            var state = keepAll ? states[l] : replay!;
            if (!keepAll) Forward(l, inputs[l], batch, state, null); // inputs[l] becomes the layer's output
            Backward(l, dx, batch, state, buffers, gradients);          // dx: ∂L/∂output → ∂L/∂input, in place
            inputs[l] = [];
            states[l] = null!;
            afterLayer?.Invoke(l);
        }
        if (gradients.Wants("model.embed_tokens.weight"))
            Layers.EmbeddingBackward(gradients.Of("model.embed_tokens.weight"), dx, batch.Tokens, c);
        return result;
    }

    /// <summary>
    /// Bytes of activations the backward pass may keep for all layers at once (default 2 GiB);
    /// above it, activations are recomputed layer by layer from per-layer checkpoints.
    /// </summary>
    public long ActivationMemoryBudget { get; set; } = 2L << 30;

    // ---- one decoder layer ---------------------------------------------------------------------

    /// <summary>
    /// Activation buffers by exact length, handed out during a pass and taken back at its end, so
    /// repeated passes over batches of the same shape reuse memory instead of faulting in fresh pages
    /// (which costs seconds per pass on a VM whose host reclaims freed memory).
    /// </summary>
    private sealed class BufferPool
    {
        private readonly Dictionary<int, Stack<float[]>> free = [];
        private readonly List<float[]> lent = [];

        // An array of exactly `length` floats with unspecified contents.
        public float[] Rent(int length)
        {
            if (length == 0) return [];
            var buffer = free.TryGetValue(length, out var stack) && stack.Count > 0 ? stack.Pop() : new float[length];
            lent.Add(buffer);
            return buffer;
        }

        // Takes back everything lent; arrays of shapes not seen again are dropped after the next pass.
        public void ReturnAll()
        {
            var keep = lent.Select(b => b.Length).ToHashSet();
            foreach (int length in free.Keys.Where(l => !keep.Contains(l)).ToList()) free.Remove(length);
            foreach (var b in lent)
            {
                if (!free.TryGetValue(b.Length, out var stack)) free[b.Length] = stack = new Stack<float[]>();
                stack.Push(b);
            }
            lent.Clear();
        }
    }

    private readonly BufferPool pool = new();

    // A layer's activations (for the backward pass when `keep`), sized for one batch. Every buffer
    // is fully written by the forward pass before it is read, so pooled contents do not matter.
    private sealed class LayerState
    {
        public LayerState(ModelConfig config, Batch batch, bool keep, BufferPool pool, bool withProbs = true)
        {
            Keep = keep;
            int t = batch.TokenCount, c = config.HiddenSize, qDim = config.NumAttentionHeads * config.HeadDim;
            int kvDim = config.NumKeyValueHeads * config.HeadDim, inter = config.IntermediateSize;
            AttnResidual = keep ? pool.Rent(t * c) : [];
            MlpResidual = keep ? pool.Rent(t * c) : [];
            AttnNorm = pool.Rent(t * c); MlpNorm = pool.Rent(t * c); AttnRstd = pool.Rent(t); MlpRstd = pool.Rent(t);
            QueryStates = pool.Rent(t * qDim); AttnOutput = pool.Rent(t * qDim); KeyStates = pool.Rent(t * kvDim); ValueStates = pool.Rent(t * kvDim);
            AttnProbs = withProbs ? pool.Rent(checked((int)Layers.AttentionProbsLength(batch.Starts, config.NumAttentionHeads))) : [];
            MlpGate = pool.Rent(t * inter); MlpUp = pool.Rent(t * inter); MlpAct = pool.Rent(t * inter);
            BranchOutput = pool.Rent(t * c);
            NormWeight = pool.Rent(c);
        }

        // Bytes a kept state holds for a batch (the activations the backward pass reads).
        public static long KeptBytes(ModelConfig config, Batch batch, LoraWeights? lora)
        {
            long t = batch.TokenCount, c = config.HiddenSize, qDim = config.NumAttentionHeads * config.HeadDim;
            long kvDim = config.NumKeyValueHeads * config.HeadDim, inter = config.IntermediateSize;
            long floats = t * (6 * c + 2 * qDim + 2 * kvDim + 3 * inter + 2) + Layers.AttentionProbsLength(batch.Starts, config.NumAttentionHeads)
                          + (lora is null ? 0 : t * lora.Rank * lora.TargetModules.Count);
            return floats * sizeof(float);
        }

        public readonly bool Keep;
        public KvCache? Cache;
        public int[] CacheSequenceOfToken = [];

        // T = tokens of the batch, C = hidden_size, NH / NKV = attention / key-value heads, HD = head_dim,
        // I = intermediate_size, L_s = length of sequence s. In forward order:
        public readonly float[] AttnResidual;  // (T, C) layer input, the residual stream attention adds to: for input_layernorm's backward (only if keep, else empty)
        public readonly float[] AttnNorm;      // (T, C) input_layernorm(attn_residual): what q_proj/k_proj/v_proj read
        public readonly float[] AttnRstd;      // (T) input_layernorm's 1/√(mean(x²) + eps) per token
        public readonly float[] QueryStates;   // (T, NH·HD) q_proj(attn_norm), then rotated by RoPE in place
        public readonly float[] KeyStates;     // (T, NKV·HD) k_proj(attn_norm), then rotated by RoPE in place
        public readonly float[] ValueStates;   // (T, NKV·HD) v_proj(attn_norm)
        public readonly float[] AttnProbs;     // (Σ_s NH·L_s·L_s) causal softmax(q·kᵀ/√HD), (NH, L_s, L_s) per sequence s (empty without withProbs)
        public readonly float[] AttnOutput;    // (T, NH·HD) attn_probs · value_states (or over the KV cache), heads side by side: what o_proj reads
        public readonly float[] MlpResidual;   // (T, C) attn_residual + o_proj(attn_output), the residual stream the MLP adds to (only if keep, else empty)
        public readonly float[] MlpNorm;       // (T, C) post_attention_layernorm(mlp_residual): what gate_proj/up_proj read
        public readonly float[] MlpRstd;       // (T) post_attention_layernorm's 1/√(mean(x²) + eps) per token
        public readonly float[] MlpGate;       // (T, I) gate_proj(mlp_norm), before SiLU
        public readonly float[] MlpUp;         // (T, I) up_proj(mlp_norm)
        public readonly float[] MlpAct;        // (T, I) silu(mlp_gate) · mlp_up (SwiGLU): what down_proj reads
        public readonly float[] BranchOutput;  // (T, C) o_proj(attn_output), then down_proj(mlp_act): scratch for what a block adds to the residual stream
        public readonly float[] NormWeight;    // (C) weight of the RMSNorm at hand (input_layernorm, then post_attention_layernorm)
        public readonly Dictionary<string, float[]> LoraHidden = new(StringComparer.Ordinal); // x·Aᵀ per module
    }

    // Scratch gradients of one layer's backward pass, shared by all layers (shapes as in LayerState).
    private sealed class GradientBuffers
    {
        public float[] Get(ref float[]? buffer, int length)
        {
            if (buffer is null || buffer.Length != length) buffer = new float[length];
            else Array.Clear(buffer);
            return buffer;
        }

        public float[]? DMlpAct;       // (T, I) ∂L/∂mlp_act, from down_proj's backward
        public float[]? DMlpGate;      // (T, I) ∂L/∂mlp_gate
        public float[]? DMlpUp;        // (T, I) ∂L/∂mlp_up
        public float[]? DMlpNorm;      // (T, C) ∂L/∂mlp_norm, summed over gate_proj and up_proj
        public float[]? DAttnOutput;   // (T, NH·HD) ∂L/∂attn_output, from o_proj's backward
        public float[]? DQueryStates;  // (T, NH·HD) ∂L/∂query_states, then (RoPE backward, in place) ∂L/∂q_proj output
        public float[]? DKeyStates;    // (T, NKV·HD) ∂L/∂key_states, then (RoPE backward, in place) ∂L/∂k_proj output
        public float[]? DValueStates;  // (T, NKV·HD) ∂L/∂value_states
        public float[]? DAttnNorm;     // (T, C) ∂L/∂attn_norm, summed over q_proj, k_proj and v_proj
    }

    // x (T,C) → x + attn(norm(x)) → + mlp(norm(·)), in place
    private void Forward(int layer, Span<float> x, Batch batch, LayerState s, ModuleInputHook? hook, string? stopAfter = null)
    {
        var cfg = Config;
        int t = batch.TokenCount, c = cfg.HiddenSize, heads = cfg.NumAttentionHeads, kvHeads = cfg.NumKeyValueHeads, d = cfg.HeadDim;
        int qDim = heads * d, kvDim = kvHeads * d, inter = cfg.IntermediateSize;
        string p = $"model.layers.{layer}.";
        float eps = (float)cfg.RmsNormEps;
        if (s.Keep) x.CopyTo(s.AttnResidual);

        // The input of a module goes to the hook; with stopAfter the pass ends at that module's input.
        bool Input(string module, float[] input, int columns)
        {
            hook?.Invoke(layer, module, input, t, columns);
            return stopAfter == module;
        }

        // attn_norm (T,C) = RMSNorm(x) · input_layernorm
        LoadSmall(p + "input_layernorm.weight", s.NormWeight);
        Layers.RmsNormForward(s.AttnNorm, s.AttnRstd, x, s.NormWeight, t, c, eps);
        if (Input("q_proj", s.AttnNorm, c) || Input("k_proj", s.AttnNorm, c) || Input("v_proj", s.AttnNorm, c)) return;

        // query (T,H·D), key, value (T,KVH·D) = attn_norm · W{q,k,v}ᵀ (+ bias), then RoPE on query and key
        Linear(layer, "q_proj", s.AttnNorm, s.QueryStates, t, c, qDim, s);
        Linear(layer, "k_proj", s.AttnNorm, s.KeyStates, t, c, kvDim, s);
        Linear(layer, "v_proj", s.AttnNorm, s.ValueStates, t, c, kvDim, s);
        rope.Ensure(batch.Positions.Max() + 1);
        Layers.RopeForward(s.QueryStates, batch.Positions, rope.Cos, rope.Sin, heads, d);
        Layers.RopeForward(s.KeyStates, batch.Positions, rope.Cos, rope.Sin, kvHeads, d);

        // attn_output (T,H·D) = causal GQA attention (over the batch, or over each sequence's KV cache), within
        // the layer's sliding window if it has one;
        // mlp_residual = x + attn_output · W_oᵀ
        if (s.Cache is { } cache)
        {
            for (int i = 0; i < t; i++)
                cache.Store(s.CacheSequenceOfToken[i], layer, batch.Positions[i], s.KeyStates.AsSpan(i * kvDim, kvDim), s.ValueStates.AsSpan(i * kvDim, kvDim));
            Layers.AttentionCachedForward(s.AttnOutput, s.QueryStates, cache, layer, s.CacheSequenceOfToken, batch.Positions, heads, kvHeads, d, cfg.SlidingWindowOf(layer));
        }
        else
        {
            Layers.AttentionForward(s.AttnOutput, s.AttnProbs, s.QueryStates, s.KeyStates, s.ValueStates, batch.Starts, heads, kvHeads, d, cfg.SlidingWindowOf(layer));
        }
        if (Input("o_proj", s.AttnOutput, qDim)) return;
        Linear(layer, "o_proj", s.AttnOutput, s.BranchOutput, t, qDim, c, s);
        TensorPrimitives.Add(x, s.BranchOutput, x);
        if (s.Keep) x.CopyTo(s.MlpResidual);

        // mlp_norm = RMSNorm(mlp_residual) · post_attention_layernorm
        LoadSmall(p + "post_attention_layernorm.weight", s.NormWeight);
        Layers.RmsNormForward(s.MlpNorm, s.MlpRstd, x, s.NormWeight, t, c, eps);
        if (Input("gate_proj", s.MlpNorm, c) || Input("up_proj", s.MlpNorm, c)) return;

        // mlp_act (T,I) = silu(mlp_norm·W_gᵀ) · (mlp_norm·W_uᵀ);  output = mlp_residual + mlp_act · W_dᵀ
        Linear(layer, "gate_proj", s.MlpNorm, s.MlpGate, t, c, inter, s);
        Linear(layer, "up_proj", s.MlpNorm, s.MlpUp, t, c, inter, s);
        Layers.SwiGluForward(s.MlpAct, s.MlpGate, s.MlpUp);
        if (Input("down_proj", s.MlpAct, inter)) return;
        Linear(layer, "down_proj", s.MlpAct, s.BranchOutput, t, inter, c, s);
        TensorPrimitives.Add(x, s.BranchOutput, x);
    }

    // dx (T,C): ∂L/∂(layer output) in, ∂L/∂(layer input) out; accumulates the requested gradients
    private void Backward(int layer, float[] dx, Batch batch, LayerState s, GradientBuffers buf, Gradients g)
    {
        var cfg = Config;
        int t = batch.TokenCount, c = cfg.HiddenSize, heads = cfg.NumAttentionHeads, kvHeads = cfg.NumKeyValueHeads, d = cfg.HeadDim;
        int qDim = heads * d, kvDim = kvHeads * d, inter = cfg.IntermediateSize;
        string p = $"model.layers.{layer}.";

        // output = mlp_residual + mlp_act·W_dᵀ: the residual passes dx through; mlp_act = silu(mlp_gate)·mlp_up;
        // mlp_gate, mlp_up = mlp_norm·W{g,u}ᵀ
        var dMlpAct = buf.Get(ref buf.DMlpAct, t * inter);
        LinearBackward(layer, "down_proj", dMlpAct, dx, s.MlpAct, t, inter, c, s, g);
        var dMlpGate = buf.Get(ref buf.DMlpGate, t * inter);
        var dMlpUp = buf.Get(ref buf.DMlpUp, t * inter);
        Layers.SwiGluBackward(dMlpGate, dMlpUp, dMlpAct, s.MlpGate, s.MlpUp);
        var dMlpNorm = buf.Get(ref buf.DMlpNorm, t * c);
        LinearBackward(layer, "gate_proj", dMlpNorm, dMlpGate, s.MlpNorm, t, c, inter, s, g);
        LinearBackward(layer, "up_proj", dMlpNorm, dMlpUp, s.MlpNorm, t, c, inter, s, g);
        LoadSmall(p + "post_attention_layernorm.weight", s.NormWeight);
        Layers.RmsNormBackward(dx, g.Of(p + "post_attention_layernorm.weight"), dMlpNorm, s.MlpResidual, s.NormWeight, s.MlpRstd, t, c);

        // mlp_residual = x + attn_output·W_oᵀ; attn_output = attention(query, key, value); query, key rotated;
        // query, key, value = attn_norm·W{q,k,v}ᵀ
        var dAttnOutput = buf.Get(ref buf.DAttnOutput, t * qDim);
        LinearBackward(layer, "o_proj", dAttnOutput, dx, s.AttnOutput, t, qDim, c, s, g);
        var dQueryStates = buf.Get(ref buf.DQueryStates, t * qDim);
        var dKeyStates = buf.Get(ref buf.DKeyStates, t * kvDim);
        var dValueStates = buf.Get(ref buf.DValueStates, t * kvDim);
        Layers.AttentionBackward(dQueryStates, dKeyStates, dValueStates, dAttnOutput, s.AttnProbs, s.QueryStates, s.KeyStates, s.ValueStates, batch.Starts, heads, kvHeads, d);
        Layers.RopeBackward(dQueryStates, batch.Positions, rope.Cos, rope.Sin, heads, d);
        Layers.RopeBackward(dKeyStates, batch.Positions, rope.Cos, rope.Sin, kvHeads, d);
        var dAttnNorm = buf.Get(ref buf.DAttnNorm, t * c);
        LinearBackward(layer, "q_proj", dAttnNorm, dQueryStates, s.AttnNorm, t, c, qDim, s, g);
        LinearBackward(layer, "k_proj", dAttnNorm, dKeyStates, s.AttnNorm, t, c, kvDim, s, g);
        LinearBackward(layer, "v_proj", dAttnNorm, dValueStates, s.AttnNorm, t, c, kvDim, s, g);
        LoadSmall(p + "input_layernorm.weight", s.NormWeight);
        Layers.RmsNormBackward(dx, g.Of(p + "input_layernorm.weight"), dAttnNorm, s.AttnResidual, s.NormWeight, s.AttnRstd, t, c);
    }

    // y (T,out) = x (T,in) · Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ
    private void Linear(int layer, string module, ReadOnlySpan<float> x, Span<float> y, int t, int inDim, int outDim, LayerState s)
    {
        string name = ModelConfig.LinearWeightName(layer, module);
        string bias = name[..^"weight".Length] + "bias";
        float[] b = Weights.Contains(bias) ? LoadCopy(bias) : [];
        var w = Weights.Load(name, ref scratch);
        Layers.LinearForward(y, x, w, b, t, inDim, outDim);
        if (Lora is not null && Lora.TryGet(name, out var lora))
        {
            // xa (T,r) = x · Aᵀ;  y += scale · xa · Bᵀ
            if (!s.LoraHidden.TryGetValue(module, out var xa)) s.LoraHidden[module] = xa = new float[t * Lora.Rank];
            Layers.LinearForward(xa, x, lora.A, [], t, inDim, Lora.Rank);
            Tensors.Gemm.Compute(Tensors.Transpose.No, Tensors.Transpose.Yes, t, outDim, Lora.Rank, Lora.Scale, xa, Lora.Rank, lora.B, Lora.Rank, 1f, y, outDim);
        }
    }

    // dx (T,in) += dy·W (+ LoRA path); dW, dbias, dA, dB as requested
    private void LinearBackward(int layer, string module, Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int t, int inDim, int outDim, LayerState s, Gradients g)
    {
        string name = ModelConfig.LinearWeightName(layer, module);
        string bias = name[..^"weight".Length] + "bias";
        var w = Weights.Load(name, ref scratch);
        Layers.LinearBackward(dx, g.Of(name), g.Of(bias), dy, x, w, t, inDim, outDim);
        if (Lora is not null && Lora.TryGet(name, out var lora))
        {
            int r = Lora.Rank;
            var xa = s.LoraHidden[module];
            // dB (out,r) += scale · dyᵀ·xa;  dxa (T,r) = scale · dy·B;  dA (r,in) += dxaᵀ·x;  dx += dxa·A
            var dB = g.Of(LoraWeights.ParameterName(name, 'B'));
            if (!dB.IsEmpty) Tensors.Gemm.Compute(Tensors.Transpose.Yes, Tensors.Transpose.No, outDim, r, t, Lora.Scale, dy, outDim, xa, r, 1f, dB, r);
            var dxa = new float[t * r];
            Tensors.Gemm.Compute(Tensors.Transpose.No, Tensors.Transpose.No, t, r, outDim, Lora.Scale, dy, outDim, lora.B, r, 0f, dxa, r);
            Layers.LinearBackward(dx, g.Of(LoraWeights.ParameterName(name, 'A')), [], dxa, x, lora.A, t, inDim, r);
        }
    }

    private void LoadSmall(string name, Span<float> destination)
    {
        float[] own = [];
        Weights.Load(name, ref own).CopyTo(destination);
    }

    private float[] LoadCopy(string name)
    {
        float[] own = [];
        return Weights.Load(name, ref own).ToArray();
    }

    // ---- head and loss -------------------------------------------------------------------------

    // Logits (a chunk of rows at a time) = h · W_lmᵀ, cross-entropy against targets; with a
    // gradient request, dh (T,C) += ∂L/∂h · scale and the lm_head gradient as requested.
    private LossResult HeadLoss(float[] h, int[] targets, Gradients? gradients, (float[] Dh, float Scale) back)
    {
        int t = targets.Length, c = Config.HiddenSize, v = Config.VocabSize;
        int labelled = targets.Count(y => y != -100);
        var logProbs = new float[t];
        Array.Fill(logProbs, float.NaN);
        if (labelled == 0) return new LossResult(double.NaN, 0, logProbs);
        var w = Weights.Load(LmHead, ref scratch); // held while nothing else loads into scratch
        var dW = gradients is null ? Span<float>.Empty : gradients.Of(LmHead);
        float gradScale = back.Dh is null ? 0f : back.Scale / labelled;
        double total = 0;
        int chunkRows = Math.Clamp(LogitBudget / v, 16, LogitRows);
        var logits = new float[chunkRows * v];
        for (int r0 = 0; r0 < t; r0 += chunkRows)
        {
            int rows = Math.Min(chunkRows, t - r0);
            var chunk = logits.AsSpan(0, rows * v);
            var hChunk = h.AsSpan(r0 * c, rows * c);
            Layers.LinearForward(chunk, hChunk, w, [], rows, c, v);
            var losses = new float[rows];
            Layers.CrossEntropyForwardBackward(losses, back.Dh is null ? Span<float>.Empty : chunk, chunk, targets.AsSpan(r0, rows), v, gradScale);
            for (int i = 0; i < rows; i++)
                if (targets[r0 + i] != -100)
                {
                    total += losses[i];
                    logProbs[r0 + i] = -losses[i];
                }
            if (back.Dh is null) continue;
            // chunk now holds dlogits (rows,V): dh += dlogits·W_lm;  dW_lm += dlogitsᵀ·h
            Layers.LinearBackward(back.Dh.AsSpan(r0 * c, rows * c), dW, [], chunk, hChunk, w, rows, c, v);
        }
        return new LossResult(total / labelled, labelled, logProbs);
    }
}
