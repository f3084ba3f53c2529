using System.CommandLine;
using Irr.Model;
using Irr.IO;

namespace Irr.Cli;

/// <summary><c>irr eval</c>: the evaluation commands (safety, task, ppl) and what they share.</summary>
internal static class EvalCommand
{
    public static Command Create() => new("eval", "Evaluate a model: harmful-response rate (safety), task accuracy (task), perplexity (ppl)")
    {
        EvalSafetyCommand.Create(),
        EvalTaskCommand.Create(),
        EvalPplCommand.Create(),
    };

    public static Option<int> MaxNewTokensOption(int defaultValue) => new("--max-new-tokens") { Description = "most tokens generated per prompt", DefaultValueFactory = _ => defaultValue };

    public static Option<int?> LimitOption(string what) => new("--limit") { Description = $"use only the first N {what}" };

    /// <summary>Greedy decoding, as the paper evaluates, with the model's EOS ids.</summary>
    public static GenerationOptions Greedy(string modelDir, CheckpointWeights weights, Irr.Text.PretrainedTokenizer tokenizer, int maxNewTokens, int batchSize)
    {
        if (maxNewTokens < 1) throw new IrrException($"--max-new-tokens must be at least 1, not {maxNewTokens}");
        if (batchSize < 1) throw new IrrException($"--batch-size must be at least 1, not {batchSize}");
        return new GenerationOptions
        {
            MaxNewTokens = maxNewTokens,
            EosTokenIds = CommandSupport.EosIds(modelDir, weights.Config, tokenizer),
            BatchSize = batchSize,
        };
    }

    public static IReadOnlyList<T> Limit<T>(IReadOnlyList<T> items, int? limit) => limit switch
    {
        null => items,
        < 1 => throw new IrrException($"--limit must be at least 1, not {limit}"),
        _ => items.Take(limit.Value).ToList(),
    };
}
