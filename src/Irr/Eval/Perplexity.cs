using Irr.Data;
using Irr.Model;
using Irr.Text;
using Irr.IO;

namespace Irr.Eval;

/// <summary>The perplexity of a model on a text corpus.</summary>
/// <param name="Records">Texts scored.</param>
/// <param name="Tokens">Predicted tokens (each record's tokens after the first, up to the maximum length).</param>
/// <param name="MeanNll">The mean negative log-likelihood per predicted token, in nats.</param>
public sealed record PerplexityResult(int Records, long Tokens, double MeanNll)
{
    /// <summary>exp(mean NLL); NaN when no token was predicted.</summary>
    public double Perplexity => Tokens == 0 ? double.NaN : Math.Exp(MeanNll);
}

/// <summary>
/// <c>irr eval ppl</c> as a library: each text is encoded as the tokenizer does by default (with its BOS where the
/// tokenizer adds one), cut to a maximum length, and every token after the first is predicted; the perplexity is
/// exp of the mean NLL over all predicted tokens of all texts.
/// </summary>
public static class Perplexity
{
    /// <summary>
    /// Reads texts (<see cref="DataFile"/>, with .txt read as paragraphs): a <c>.txt</c> file (one record per paragraph,
    /// paragraphs separated by blank lines), or a data file of strings or of objects with <c>text</c> (<see cref="DataRecord.Text"/>).
    /// </summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed.</exception>
    public static IReadOnlyList<string> LoadTexts(string path) =>
        DataFile.Read(path, paragraphs: true).Select(r => r.Text()).ToList();

    /// <summary>The perplexity of <paramref name="model"/> on <paramref name="texts"/>; <paramref name="progress"/> gets (records, tokens) per batch.</summary>
    /// <exception cref="IrrException"><paramref name="maxLength"/> is below 2.</exception>
    public static PerplexityResult Compute(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<string> texts, int maxLength, int batchSize,
        Action<int, int>? progress = null)
    {
        if (maxLength < 2) throw new IrrException($"the maximum length must be at least 2, not {maxLength}");
        var sequences = texts.Select(t =>
        {
            int[] ids = tokenizer.Encode(t, addSpecialTokens: true);
            if (ids.Length > maxLength) ids = ids[..maxLength];
            return (InputIds: ids, Labels: ids);
        }).Where(s => s.InputIds.Length > 0).ToList();
        var logProbs = Scoring.TargetLogProbs(model, sequences, batchSize, progress);
        long tokens = logProbs.Sum(l => (long)l.Count);
        double nll = -logProbs.Sum(l => l.Sum(x => (double)x));
        return new PerplexityResult(texts.Count, tokens, tokens == 0 ? double.NaN : nll / tokens);
    }
}

/// <summary><c>perplexity.json</c> of a run directory, written by <c>irr eval ppl -o DIR</c>.</summary>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it, or null.</param>
/// <param name="Data">The text file.</param>
/// <param name="MaxLength">Tokens kept per text.</param>
/// <param name="Records">Texts scored.</param>
/// <param name="Tokens">Predicted tokens.</param>
/// <param name="MeanNll">Mean negative log-likelihood per predicted token (nats).</param>
/// <param name="Perplexity">exp(<paramref name="MeanNll"/>).</param>
public sealed record PerplexityRun(string Model, string? Adapter, string Data, int MaxLength, int Records, long Tokens, double MeanNll, double Perplexity)
{
    /// <summary>The file name inside a run directory.</summary>
    public const string FileName = "perplexity.json";

    /// <summary>Writes this run to <c>DIR/perplexity.json</c> (atomically).</summary>
    public void Save(string directory) => JsonFiles.Save(Path.Combine(directory, FileName), this);
}
