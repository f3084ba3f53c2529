using System.Text.Json;

namespace Irr.IO;

/// <summary>
/// Which files of a Hub repo a command needs, from the repo's file list (the revision API's <c>siblings</c>, or the
/// files of a cached snapshot): what <see cref="HubClient.Snapshot"/> downloads, so that a 7B model's
/// <c>original/consolidated.pth</c> or a second copy of its weights is never fetched. The weights are picked as
/// <see cref="ModelDirectory"/> loads them (transformers' order: <c>model.safetensors</c>, the safetensors shard index,
/// <c>pytorch_model.bin</c>, the PyTorch shard index), so a Mistral repo's <c>consolidated.safetensors</c> beside its
/// sharded <c>model-*.safetensors</c> is never downloaded; the shards an index lists are added by
/// <see cref="HubClient.Snapshot"/> once the index is on disk (<see cref="ShardsOf"/>). Only top-level files are picked,
/// and the named chat templates transformers reads (<c>additional_chat_templates/*.jinja</c>).
/// </summary>
public static class HubFiles
{
    /// <summary>The files that travel with a model and that irr reads: its configs, tokenizer, chat template and card.</summary>
    public static readonly IReadOnlyList<string> ModelFiles =
        ["config.json", "generation_config.json", .. Text.TokenizerSource.FileNames, "vocab.json", "merges.txt", ModelCard.FileName];

    /// <summary>The weight layouts in the order <see cref="ModelDirectory.Open"/> (and transformers) loads them.</summary>
    public static readonly IReadOnlyList<string> WeightLayouts =
        [ModelDirectory.WeightsFile, ModelDirectory.IndexFile, ModelDirectory.TorchWeightsFile, ModelDirectory.TorchIndexFile];

    /// <summary>
    /// The files a model command needs from <paramref name="files"/> (paths in the repo): <see cref="ModelFiles"/> that are
    /// present, the first weight layout of <see cref="WeightLayouts"/> present, and always <c>config.json</c> and a weights
    /// file (<c>model.safetensors</c> when the repo has none of the layouts), so that a repo without them is refused by name
    /// and a cached snapshot missing them counts as incomplete.
    /// </summary>
    public static IReadOnlyList<string> Model(IReadOnlyList<string> files)
    {
        var present = new HashSet<string>(files, StringComparer.Ordinal);
        var picked = new List<string> { "config.json" };
        picked.AddRange(ModelFiles.Where(present.Contains));
        picked.Add(WeightLayouts.FirstOrDefault(present.Contains) ?? ModelDirectory.WeightsFile);
        picked.AddRange(NamedChatTemplates(files));
        return picked.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The files a PEFT adapter needs from <paramref name="files"/>: <c>adapter_config.json</c> (always),
    /// <c>adapter_model.safetensors</c>, else <c>adapter_model.bin</c> (PEFT's order; <c>adapter_model.safetensors</c> when
    /// neither is present, so the repo is refused by name), the tokenizer files saved with it and its card.
    /// </summary>
    public static IReadOnlyList<string> Adapter(IReadOnlyList<string> files)
    {
        var present = new HashSet<string>(files, StringComparer.Ordinal);
        var picked = new List<string> { LoraAdapter.ConfigFile };
        picked.Add(present.Contains(LoraAdapter.WeightsFile) || !present.Contains(LoraAdapter.TorchWeightsFile) ? LoraAdapter.WeightsFile : LoraAdapter.TorchWeightsFile);
        picked.AddRange(Text.TokenizerSource.FileNames.Append(ModelCard.FileName).Where(present.Contains));
        picked.AddRange(NamedChatTemplates(files));
        return picked.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Whether <paramref name="path"/> is a shard index whose shards must be fetched with it (<c>*.safetensors.index.json</c>, <c>*.bin.index.json</c>).</summary>
    public static bool IsShardIndex(string path) =>
        path.EndsWith(".safetensors.index.json", StringComparison.Ordinal) || path.EndsWith(".bin.index.json", StringComparison.Ordinal);

    /// <summary>
    /// The shard files the index at <paramref name="indexFile"/> (on disk; its repo path is <paramref name="indexPath"/>)
    /// lists in its <c>weight_map</c>, as repo paths beside the index, in first-listed order. The file is read bounded
    /// (<see cref="JsonFiles.MaxJsonBytes"/>).
    /// </summary>
    /// <exception cref="IrrException">The index is not JSON, has no <c>weight_map</c> object, or names a file that is not beside it.</exception>
    public static IReadOnlyList<string> ShardsOf(string indexFile, string indexPath)
    {
        using var doc = JsonFiles.ParseDocument(JsonFiles.ReadText(indexFile), indexFile, 64);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new IrrException($"{indexFile}: no weight_map object (not a shard index)");
        string folder = indexPath.Contains('/') ? indexPath[..(indexPath.LastIndexOf('/') + 1)] : "";
        var shards = new List<string>();
        foreach (var entry in map.EnumerateObject())
        {
            string? shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
            if (shard is null || shard.Length == 0 || shard is "." or ".." || shard.Contains('/') || shard.Contains('\\') || shard.Contains('\0'))
                throw new IrrException($"{indexFile}: weight_map names '{Diagnostics.Escape(shard ?? entry.Value.ToString())}' for {Diagnostics.Escape(entry.Name)}, not a file beside the index");
            shards.Add(folder + shard);
        }
        return shards.Distinct(StringComparer.Ordinal).ToList();
    }

    private static IEnumerable<string> NamedChatTemplates(IReadOnlyList<string> files) =>
        files.Where(f => f.StartsWith(Text.TokenizerSource.ChatTemplateDir + "/", StringComparison.Ordinal)
                         && f.EndsWith(".jinja", StringComparison.Ordinal) && f.Count(c => c == '/') == 1).Order(StringComparer.Ordinal);
}
