using System.Numerics.Tensors;
using Irr.IO;

namespace Irr.Model;

/// <summary>Called with the input of a target linear module (rows × columns) as a layer runs.</summary>
/// <param name="layer">Decoder layer index.</param>
/// <param name="module">A linear module of the family (<see cref="ModelConfig.LinearModules"/>): q_proj … down_proj, or Phi-3's qkv_proj and gate_up_proj.</param>
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
/// A decoder of the families <see cref="ModelConfig.SupportedArchitectures"/> lists (Llama, Mistral, Qwen2, Qwen3,
/// Gemma-2, Gemma-3 text, Phi-3) computed in float32 as Hugging Face does, over packed batches of variable-length
/// sequences. Where the families differ (GeGLU, Gemma's (1 + w) and sandwich norms, qk-norm, soft-capping, fused
/// projections, per-layer RoPE) the config says so and the layer follows transformers' modeling code.
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

    private readonly Rope[] ropes;        // per layer (shared by layers with the same rotary parameters)
    private readonly float embedScale;    // Gemma's normalizer √hidden_size in the embedding's dtype, else 1
    private float[] scratch = [];

    /// <summary>A model over <paramref name="weights"/>, with optional trainable LoRA matrices.</summary>
    public Transformer(IWeightSource weights, LoraWeights? lora = null)
    {
        Weights = weights;
        Config = weights.Config;
        Lora = lora;
        var byParameters = new Dictionary<RotaryParameters, Rope>(ReferenceEqualityComparer.Instance);
        ropes = Enumerable.Range(0, Config.NumHiddenLayers).Select(l =>
        {
            var parameters = Config.RotaryOf(l);
            if (!byParameters.TryGetValue(parameters, out var rope)) byParameters[parameters] = rope = new Rope(Config.HeadDim, parameters);
            return rope;
        }).ToArray();
        embedScale = Config.ScaleEmbeddings ? EmbeddingNormalizer(Config.HiddenSize, weights.StorageType("model.embed_tokens.weight")) : 1f;
    }

    // transformers: normalizer = torch.tensor(hidden_size ** 0.5, dtype=hidden_states.dtype) (Gemma-2; Gemma-3's
    // embed_scale.to(weight.dtype)): √hidden rounded to the embedding's dtype
    private static float EmbeddingNormalizer(int hidden, TensorDType dtype)
    {
        float root = (float)Math.Sqrt(hidden);
        return dtype switch
        {
            TensorDType.BF16 => Tensors.BFloat16.ToSingle(Tensors.BFloat16.FromSingle(root)),
            TensorDType.F16 => Tensors.Float16.ToSingle(Tensors.Float16.FromSingle(root)),
            _ => root,
        };
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
        if (embedScale != 1f) TensorPrimitives.Multiply(x, embedScale, x); // Gemma: inputs_embeds · normalizer
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
        var w = LoadNorm("model.norm.weight");
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
        Layers.SoftcapForward(logits, FinalSoftcap); // Gemma-2: final_logit_softcapping
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
        var finalWeight = LoadNorm("model.norm.weight");
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
        {
            if (embedScale != 1f) TensorPrimitives.Multiply(dx, embedScale, dx);
            Layers.EmbeddingBackward(gradients.Of("model.embed_tokens.weight"), dx, batch.Tokens, c);
        }
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
            bool qk = config.QkNorm, fused = config.FusedProjections, sandwich = config.SandwichNorms;
            HeadNormWeight = qk ? pool.Rent(config.HeadDim) : [];
            QueryPreNorm = qk ? pool.Rent(t * qDim) : []; KeyPreNorm = qk ? pool.Rent(t * kvDim) : [];
            QueryRstd = qk ? pool.Rent(t * config.NumAttentionHeads) : []; KeyRstd = qk ? pool.Rent(t * config.NumKeyValueHeads) : [];
            QkvStates = fused ? pool.Rent(t * (qDim + 2 * kvDim)) : []; MlpGateUp = fused ? pool.Rent(t * 2 * inter) : [];
            AttnBranch = sandwich ? pool.Rent(t * c) : []; MlpBranch = sandwich ? pool.Rent(t * c) : [];
            AttnPostRstd = sandwich ? pool.Rent(t) : []; MlpPostRstd = sandwich ? pool.Rent(t) : [];
        }

        // Bytes a kept state holds for a batch (the activations the backward pass reads).
        public static long KeptBytes(ModelConfig config, Batch batch, LoraWeights? lora)
        {
            long t = batch.TokenCount, c = config.HiddenSize, qDim = config.NumAttentionHeads * config.HeadDim;
            long kvDim = config.NumKeyValueHeads * config.HeadDim, inter = config.IntermediateSize;
            long floats = t * (6 * c + 2 * qDim + 2 * kvDim + 3 * inter + 2) + Layers.AttentionProbsLength(batch.Starts, config.NumAttentionHeads)
                          + (lora is null ? 0 : t * lora.Rank * lora.TargetModules.Count);
            if (config.QkNorm) floats += t * (qDim + kvDim + config.NumAttentionHeads + config.NumKeyValueHeads);
            if (config.FusedProjections) floats += t * (qDim + 2 * kvDim + 2 * inter);
            if (config.SandwichNorms) floats += t * (2 * c + 2);
            return floats * sizeof(float);
        }

        public readonly bool Keep;
        public KvCache? Cache;
        public int[] CacheSequenceOfToken = [];

        // T = tokens of the batch, C = hidden_size, NH / NKV = attention / key-value heads, HD = head_dim,
        // I = intermediate_size, L_s = length of sequence s. In forward order:
        public readonly float[] AttnResidual;  // (T, C) layer input, the residual stream attention adds to: for input_layernorm's backward (only if keep, else empty)
        public readonly float[] AttnNorm;      // (T, C) input_layernorm(attn_residual): what q_proj/k_proj/v_proj (Phi-3: qkv_proj) read
        public readonly float[] AttnRstd;      // (T) input_layernorm's 1/√(mean(x²) + eps) per token
        public readonly float[] QkvStates;     // (T, NH·HD + 2·NKV·HD) Phi-3's qkv_proj(attn_norm): q, k, v side by side (empty otherwise)
        public readonly float[] QueryPreNorm;  // (T, NH·HD) q_proj(attn_norm) before q_norm (Qwen3, Gemma-3; empty otherwise)
        public readonly float[] KeyPreNorm;    // (T, NKV·HD) k_proj(attn_norm) before k_norm (Qwen3, Gemma-3; empty otherwise)
        public readonly float[] QueryRstd;     // (T·NH) q_norm's 1/√(mean(q²) + eps) per head
        public readonly float[] KeyRstd;       // (T·NKV) k_norm's 1/√(mean(k²) + eps) per head
        public readonly float[] QueryStates;   // (T, NH·HD) q_proj(attn_norm) (q_norm'ed), then rotated by RoPE in place
        public readonly float[] KeyStates;     // (T, NKV·HD) k_proj(attn_norm) (k_norm'ed), then rotated by RoPE in place
        public readonly float[] ValueStates;   // (T, NKV·HD) v_proj(attn_norm)
        public readonly float[] AttnProbs;     // (Σ_s NH·L_s·L_s) causal softmax(q·kᵀ·scale, soft-capped), (NH, L_s, L_s) per sequence s (empty without withProbs)
        public readonly float[] AttnOutput;    // (T, NH·HD) attn_probs · value_states (or over the KV cache), heads side by side: what o_proj reads
        public readonly float[] AttnBranch;    // (T, C) o_proj(attn_output) before Gemma's post_attention_layernorm (empty otherwise)
        public readonly float[] AttnPostRstd;  // (T) Gemma's post_attention_layernorm's 1/√(mean(x²) + eps)
        public readonly float[] MlpResidual;   // (T, C) attn_residual + (normed) o_proj(attn_output), the residual stream the MLP adds to (only if keep, else empty)
        public readonly float[] MlpNorm;       // (T, C) post_attention_layernorm (Gemma: pre_feedforward_layernorm)(mlp_residual): what gate_proj/up_proj read
        public readonly float[] MlpRstd;       // (T) that norm's 1/√(mean(x²) + eps) per token
        public readonly float[] MlpGateUp;     // (T, 2I) Phi-3's gate_up_proj(mlp_norm): gate, then up (empty otherwise)
        public readonly float[] MlpGate;       // (T, I) gate_proj(mlp_norm), before the activation
        public readonly float[] MlpUp;         // (T, I) up_proj(mlp_norm)
        public readonly float[] MlpAct;        // (T, I) act(mlp_gate) · mlp_up (SwiGLU, or GeGLU for Gemma): what down_proj reads
        public readonly float[] MlpBranch;     // (T, C) down_proj(mlp_act) before Gemma's post_feedforward_layernorm (empty otherwise)
        public readonly float[] MlpPostRstd;   // (T) Gemma's post_feedforward_layernorm's 1/√(mean(x²) + eps)
        public readonly float[] BranchOutput;  // (T, C) o_proj(attn_output), then down_proj(mlp_act) (normed for Gemma): what a block adds to the residual stream
        public readonly float[] NormWeight;    // (C) offset weight of the RMSNorm at hand (input_layernorm, then post_attention_layernorm, …)
        public readonly float[] HeadNormWeight; // (HD) offset weight of q_norm, then k_norm (Qwen3, Gemma-3; empty otherwise)
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

        public float[]? DBranch;       // (T, C) ∂L/∂(a block's output before Gemma's post-norm)
        public float[]? DMlpAct;       // (T, I) ∂L/∂mlp_act, from down_proj's backward
        public float[]? DMlpGate;      // (T, I) ∂L/∂mlp_gate
        public float[]? DMlpUp;        // (T, I) ∂L/∂mlp_up
        public float[]? DMlpGateUp;    // (T, 2I) ∂L/∂gate_up_proj output (Phi-3)
        public float[]? DMlpNorm;      // (T, C) ∂L/∂mlp_norm, summed over gate_proj and up_proj
        public float[]? DAttnOutput;   // (T, NH·HD) ∂L/∂attn_output, from o_proj's backward
        public float[]? DQueryStates;  // (T, NH·HD) ∂L/∂query_states, then (RoPE backward, in place) ∂L/∂(q_norm output or q_proj output)
        public float[]? DKeyStates;    // (T, NKV·HD) ∂L/∂key_states, then (RoPE backward, in place) ∂L/∂(k_norm output or k_proj output)
        public float[]? DQueryPreNorm; // (T, NH·HD) ∂L/∂q_proj output through q_norm (Qwen3, Gemma-3)
        public float[]? DKeyPreNorm;   // (T, NKV·HD) ∂L/∂k_proj output through k_norm
        public float[]? DValueStates;  // (T, NKV·HD) ∂L/∂value_states
        public float[]? DQkv;          // (T, NH·HD + 2·NKV·HD) ∂L/∂qkv_proj output (Phi-3)
        public float[]? DAttnNorm;     // (T, C) ∂L/∂attn_norm, summed over q_proj, k_proj and v_proj
    }

    // x (T,C) → x + attn(norm(x)) → + mlp(norm(·)), in place (Gemma: each branch's output normed before it is added)
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
        LoadNorm(p + "input_layernorm.weight", s.NormWeight);
        Layers.RmsNormForward(s.AttnNorm, s.AttnRstd, x, s.NormWeight, t, c, eps);

        // query (T,H·D), key, value (T,KVH·D) = attn_norm · W{q,k,v}ᵀ (+ bias) (Phi-3: one qkv_proj, split by rows)
        if (cfg.FusedProjections)
        {
            if (Input("qkv_proj", s.AttnNorm, c)) return;
            Linear(layer, "qkv_proj", s.AttnNorm, s.QkvStates, t, c, qDim + 2 * kvDim, s);
            Split(s.QkvStates, t, [s.QueryStates, s.KeyStates, s.ValueStates], [qDim, kvDim, kvDim]);
        }
        else
        {
            if (Input("q_proj", s.AttnNorm, c) || Input("k_proj", s.AttnNorm, c) || Input("v_proj", s.AttnNorm, c)) return;
            Linear(layer, "q_proj", s.AttnNorm, s.QueryStates, t, c, qDim, s);
            Linear(layer, "k_proj", s.AttnNorm, s.KeyStates, t, c, kvDim, s);
            Linear(layer, "v_proj", s.AttnNorm, s.ValueStates, t, c, kvDim, s);
        }
        // Qwen3, Gemma-3: query, key = RMSNorm over each head's D · q_norm, k_norm, before RoPE
        if (cfg.QkNorm)
        {
            s.QueryStates.CopyTo(s.QueryPreNorm, 0);
            s.KeyStates.CopyTo(s.KeyPreNorm, 0);
            LoadNorm(p + "self_attn.q_norm.weight", s.HeadNormWeight);
            Layers.RmsNormForward(s.QueryStates, s.QueryRstd, s.QueryPreNorm, s.HeadNormWeight, t * heads, d, eps);
            LoadNorm(p + "self_attn.k_norm.weight", s.HeadNormWeight);
            Layers.RmsNormForward(s.KeyStates, s.KeyRstd, s.KeyPreNorm, s.HeadNormWeight, t * kvHeads, d, eps);
        }
        Rotate(layer, s.QueryStates, s.KeyStates, batch, backward: false);

        // attn_output (T,H·D) = causal GQA attention (over the batch, or over each sequence's KV cache), within
        // the layer's sliding window if it has one, scores scaled and (Gemma-2) soft-capped;
        // mlp_residual = x + attn_output · W_oᵀ (Gemma: + post_attention_layernorm(attn_output · W_oᵀ))
        if (s.Cache is { } cache)
        {
            for (int i = 0; i < t; i++)
                cache.Store(s.CacheSequenceOfToken[i], layer, batch.Positions[i], s.KeyStates.AsSpan(i * kvDim, kvDim), s.ValueStates.AsSpan(i * kvDim, kvDim));
            Layers.AttentionCachedForward(s.AttnOutput, s.QueryStates, cache, layer, s.CacheSequenceOfToken, batch.Positions, heads, kvHeads, d,
                cfg.SlidingWindowOf(layer), AttentionScale, AttentionSoftcap);
        }
        else
        {
            Layers.AttentionForward(s.AttnOutput, s.AttnProbs, s.QueryStates, s.KeyStates, s.ValueStates, batch.Starts, heads, kvHeads, d,
                cfg.SlidingWindowOf(layer), AttentionScale, AttentionSoftcap);
        }
        if (Input("o_proj", s.AttnOutput, qDim)) return;
        Linear(layer, "o_proj", s.AttnOutput, s.BranchOutput, t, qDim, c, s);
        PostNorm(p + "post_attention_layernorm.weight", s.BranchOutput, s.AttnBranch, s.AttnPostRstd, s, t);
        TensorPrimitives.Add(x, s.BranchOutput, x);
        if (s.Keep) x.CopyTo(s.MlpResidual);

        // mlp_norm = RMSNorm(mlp_residual) · post_attention_layernorm (Gemma: pre_feedforward_layernorm)
        LoadNorm(p + MlpNormName, s.NormWeight);
        Layers.RmsNormForward(s.MlpNorm, s.MlpRstd, x, s.NormWeight, t, c, eps);

        // mlp_act (T,I) = act(mlp_norm·W_gᵀ) · (mlp_norm·W_uᵀ) (Phi-3: one gate_up_proj, gate rows first);
        // output = mlp_residual + mlp_act · W_dᵀ (Gemma: + post_feedforward_layernorm(mlp_act · W_dᵀ))
        if (cfg.FusedProjections)
        {
            if (Input("gate_up_proj", s.MlpNorm, c)) return;
            Linear(layer, "gate_up_proj", s.MlpNorm, s.MlpGateUp, t, c, 2 * inter, s);
            Split(s.MlpGateUp, t, [s.MlpGate, s.MlpUp], [inter, inter]);
        }
        else
        {
            if (Input("gate_proj", s.MlpNorm, c) || Input("up_proj", s.MlpNorm, c)) return;
            Linear(layer, "gate_proj", s.MlpNorm, s.MlpGate, t, c, inter, s);
            Linear(layer, "up_proj", s.MlpNorm, s.MlpUp, t, c, inter, s);
        }
        if (GeGlu) Layers.GeGluForward(s.MlpAct, s.MlpGate, s.MlpUp);
        else Layers.SwiGluForward(s.MlpAct, s.MlpGate, s.MlpUp);
        if (Input("down_proj", s.MlpAct, inter)) return;
        Linear(layer, "down_proj", s.MlpAct, s.BranchOutput, t, inter, c, s);
        PostNorm(p + "post_feedforward_layernorm.weight", s.BranchOutput, s.MlpBranch, s.MlpPostRstd, s, t);
        TensorPrimitives.Add(x, s.BranchOutput, x);
    }

    // dx (T,C): ∂L/∂(layer output) in, ∂L/∂(layer input) out; accumulates the requested gradients
    private void Backward(int layer, float[] dx, Batch batch, LayerState s, GradientBuffers buf, Gradients g)
    {
        var cfg = Config;
        int t = batch.TokenCount, c = cfg.HiddenSize, heads = cfg.NumAttentionHeads, kvHeads = cfg.NumKeyValueHeads, d = cfg.HeadDim;
        int qDim = heads * d, kvDim = kvHeads * d, inter = cfg.IntermediateSize;
        string p = $"model.layers.{layer}.";

        // output = mlp_residual + branch: the residual passes dx through; branch = mlp_act·W_dᵀ (Gemma: normed);
        // mlp_act = act(mlp_gate)·mlp_up; mlp_gate, mlp_up = mlp_norm·W{g,u}ᵀ
        var dBranch = PostNormBackward(p + "post_feedforward_layernorm.weight", dx, s.MlpBranch, s.MlpPostRstd, s, buf, g, t);
        var dMlpAct = buf.Get(ref buf.DMlpAct, t * inter);
        LinearBackward(layer, "down_proj", dMlpAct, dBranch, s.MlpAct, t, inter, c, s, g);
        var dMlpGate = buf.Get(ref buf.DMlpGate, t * inter);
        var dMlpUp = buf.Get(ref buf.DMlpUp, t * inter);
        if (GeGlu) Layers.GeGluBackward(dMlpGate, dMlpUp, dMlpAct, s.MlpGate, s.MlpUp);
        else Layers.SwiGluBackward(dMlpGate, dMlpUp, dMlpAct, s.MlpGate, s.MlpUp);
        var dMlpNorm = buf.Get(ref buf.DMlpNorm, t * c);
        if (cfg.FusedProjections)
        {
            var dGateUp = buf.Get(ref buf.DMlpGateUp, t * 2 * inter);
            Join(dGateUp, t, [dMlpGate, dMlpUp], [inter, inter]);
            LinearBackward(layer, "gate_up_proj", dMlpNorm, dGateUp, s.MlpNorm, t, c, 2 * inter, s, g);
        }
        else
        {
            LinearBackward(layer, "gate_proj", dMlpNorm, dMlpGate, s.MlpNorm, t, c, inter, s, g);
            LinearBackward(layer, "up_proj", dMlpNorm, dMlpUp, s.MlpNorm, t, c, inter, s, g);
        }
        LoadNorm(p + MlpNormName, s.NormWeight);
        Layers.RmsNormBackward(dx, g.Of(p + MlpNormName), dMlpNorm, s.MlpResidual, s.NormWeight, s.MlpRstd, t, c);

        // mlp_residual = x + attn_output·W_oᵀ (Gemma: normed); attn_output = attention(query, key, value); query, key
        // rotated (and q/k-normed); query, key, value = attn_norm·W{q,k,v}ᵀ
        dBranch = PostNormBackward(p + "post_attention_layernorm.weight", dx, s.AttnBranch, s.AttnPostRstd, s, buf, g, t);
        var dAttnOutput = buf.Get(ref buf.DAttnOutput, t * qDim);
        LinearBackward(layer, "o_proj", dAttnOutput, dBranch, s.AttnOutput, t, qDim, c, s, g);
        var dQueryStates = buf.Get(ref buf.DQueryStates, t * qDim);
        var dKeyStates = buf.Get(ref buf.DKeyStates, t * kvDim);
        var dValueStates = buf.Get(ref buf.DValueStates, t * kvDim);
        Layers.AttentionBackward(dQueryStates, dKeyStates, dValueStates, dAttnOutput, s.AttnProbs, s.QueryStates, s.KeyStates, s.ValueStates, batch.Starts,
            heads, kvHeads, d, AttentionScale, AttentionSoftcap);
        Rotate(layer, dQueryStates, dKeyStates, batch, backward: true);
        if (cfg.QkNorm)
        {
            var dQuery = buf.Get(ref buf.DQueryPreNorm, t * qDim);
            LoadNorm(p + "self_attn.q_norm.weight", s.HeadNormWeight);
            Layers.RmsNormBackward(dQuery, g.Of(p + "self_attn.q_norm.weight"), dQueryStates, s.QueryPreNorm, s.HeadNormWeight, s.QueryRstd, t * heads, d);
            var dKey = buf.Get(ref buf.DKeyPreNorm, t * kvDim);
            LoadNorm(p + "self_attn.k_norm.weight", s.HeadNormWeight);
            Layers.RmsNormBackward(dKey, g.Of(p + "self_attn.k_norm.weight"), dKeyStates, s.KeyPreNorm, s.HeadNormWeight, s.KeyRstd, t * kvHeads, d);
            (dQueryStates, dKeyStates) = (dQuery, dKey);
        }
        var dAttnNorm = buf.Get(ref buf.DAttnNorm, t * c);
        if (cfg.FusedProjections)
        {
            var dQkv = buf.Get(ref buf.DQkv, t * (qDim + 2 * kvDim));
            Join(dQkv, t, [dQueryStates, dKeyStates, dValueStates], [qDim, kvDim, kvDim]);
            LinearBackward(layer, "qkv_proj", dAttnNorm, dQkv, s.AttnNorm, t, c, qDim + 2 * kvDim, s, g);
        }
        else
        {
            LinearBackward(layer, "q_proj", dAttnNorm, dQueryStates, s.AttnNorm, t, c, qDim, s, g);
            LinearBackward(layer, "k_proj", dAttnNorm, dKeyStates, s.AttnNorm, t, c, kvDim, s, g);
            LinearBackward(layer, "v_proj", dAttnNorm, dValueStates, s.AttnNorm, t, c, kvDim, s, g);
        }
        LoadNorm(p + "input_layernorm.weight", s.NormWeight);
        Layers.RmsNormBackward(dx, g.Of(p + "input_layernorm.weight"), dAttnNorm, s.AttnResidual, s.NormWeight, s.AttnRstd, t, c);
    }

    // The norm before the MLP: post_attention_layernorm (Llama), pre_feedforward_layernorm (Gemma)
    private string MlpNormName => Config.SandwichNorms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";

    private bool GeGlu => Config.HiddenAct == "gelu_pytorch_tanh";

    // Scores are × head_dim^-½ (Layers' default), or query_pre_attn_scalar^-½ (Gemma), as transformers' self.scaling
    private float AttentionScale => Config.QueryPreAttnScalar is { } q ? (float)Math.Pow(q, -0.5) : 0f;

    private float AttentionSoftcap => (float)(Config.AttnLogitSoftcapping ?? 0);

    private float FinalSoftcap => (float)(Config.FinalLogitSoftcapping ?? 0);

    // Gemma: branch (T,C) → RMSNorm(branch) · (1 + w) in place, keeping the raw branch and rstd for the backward pass
    private void PostNorm(string name, float[] branch, float[] raw, float[] rstd, LayerState s, int t)
    {
        if (!Config.SandwichNorms) return;
        branch.CopyTo(raw, 0);
        LoadNorm(name, s.NormWeight);
        Layers.RmsNormForward(branch, rstd, raw, s.NormWeight, t, Config.HiddenSize, (float)Config.RmsNormEps);
    }

    // ∂L/∂branch before the post-norm (Gemma), or dx itself
    private float[] PostNormBackward(string name, float[] dx, float[] raw, float[] rstd, LayerState s, GradientBuffers buf, Gradients g, int t)
    {
        if (!Config.SandwichNorms) return dx;
        var dBranch = buf.Get(ref buf.DBranch, dx.Length);
        LoadNorm(name, s.NormWeight);
        Layers.RmsNormBackward(dBranch, g.Of(name), dx, raw, s.NormWeight, rstd, t, Config.HiddenSize);
        return dBranch;
    }

    // RoPE on query (T, H·D) and key (T, KVH·D) in place (backward: the inverse rotation of their gradients), with the
    // layer's tables; longrope's depend on each sequence's length in this call (transformers: max(position_ids) + 1)
    private void Rotate(int layer, Span<float> query, Span<float> key, Batch batch, bool backward)
    {
        var rope = ropes[layer];
        int heads = Config.NumAttentionHeads, kvHeads = Config.NumKeyValueHeads, d = Config.HeadDim;
        if (!rope.DependsOnLength)
        {
            rope.Ensure(batch.Positions.Max() + 1);
            RotateRows(query, key, batch.Positions, rope.Cos, rope.Sin, heads, kvHeads, d, backward);
            return;
        }
        for (int i = 0; i + 1 < batch.Starts.Length; i++)
        {
            int t0 = batch.Starts[i], len = batch.Starts[i + 1] - t0;
            if (len == 0) continue;
            var positions = batch.Positions.AsSpan(t0, len);
            var (cos, sin) = rope.TablesFor(TensorPrimitives.Max<int>(positions) + 1);
            RotateRows(query.Slice(t0 * heads * d, len * heads * d), key.Slice(t0 * kvHeads * d, len * kvHeads * d), positions, cos, sin, heads, kvHeads, d, backward);
        }
    }

    private static void RotateRows(Span<float> query, Span<float> key, ReadOnlySpan<int> positions, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
        int heads, int kvHeads, int d, bool backward)
    {
        if (backward)
        {
            Layers.RopeBackward(query, positions, cos, sin, heads, d);
            Layers.RopeBackward(key, positions, cos, sin, kvHeads, d);
        }
        else
        {
            Layers.RopeForward(query, positions, cos, sin, heads, d);
            Layers.RopeForward(key, positions, cos, sin, kvHeads, d);
        }
    }

    // parts[i] (T, widths[i]) = the columns of fused (T, Σ widths) side by side (Phi-3's qkv_proj and gate_up_proj outputs)
    private static void Split(float[] fused, int t, float[][] parts, int[] widths)
    {
        int total = widths.Sum();
        for (int r = 0; r < t; r++)
            for (int i = 0, offset = 0; i < parts.Length; offset += widths[i], i++)
                fused.AsSpan(r * total + offset, widths[i]).CopyTo(parts[i].AsSpan(r * widths[i], widths[i]));
    }

    // fused (T, Σ widths) = parts side by side: the gradient of Split
    private static void Join(float[] fused, int t, float[][] parts, int[] widths)
    {
        int total = widths.Sum();
        for (int r = 0; r < t; r++)
            for (int i = 0, offset = 0; i < parts.Length; offset += widths[i], i++)
                parts[i].AsSpan(r * widths[i], widths[i]).CopyTo(fused.AsSpan(r * total + offset, widths[i]));
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

    // An RMSNorm's weight as the norm multiplies by it: w, or Gemma's 1 + w (float32, as Gemma2RMSNorm's 1.0 + weight.float())
    private void LoadNorm(string name, Span<float> destination)
    {
        LoadSmall(name, destination);
        if (Config.NormWeightOffset != 0) TensorPrimitives.Add(destination, Config.NormWeightOffset, destination);
    }

    private float[] LoadNorm(string name)
    {
        var w = LoadCopy(name);
        if (Config.NormWeightOffset != 0) TensorPrimitives.Add(w, Config.NormWeightOffset, w);
        return w;
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
        float cap = FinalSoftcap;
        var capped = cap > 0 && back.Dh is not null ? new float[chunkRows * v] : [];
        for (int r0 = 0; r0 < t; r0 += chunkRows)
        {
            int rows = Math.Min(chunkRows, t - r0);
            var chunk = logits.AsSpan(0, rows * v);
            var hChunk = h.AsSpan(r0 * c, rows * c);
            Layers.LinearForward(chunk, hChunk, w, [], rows, c, v);
            Layers.SoftcapForward(chunk, cap);               // Gemma-2: logits = c·tanh(logits/c)
            if (capped.Length > 0) chunk.CopyTo(capped);
            var losses = new float[rows];
            Layers.CrossEntropyForwardBackward(losses, back.Dh is null ? Span<float>.Empty : chunk, chunk, targets.AsSpan(r0, rows), v, gradScale);
            if (capped.Length > 0) Layers.SoftcapBackward(chunk, capped.AsSpan(0, rows * v), cap); // dlogits before the cap
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
