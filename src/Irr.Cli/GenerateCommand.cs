using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Text;
using Irr.IO;

namespace Irr.Cli;

/// <summary><c>irr generate</c>: answers to a list of prompts, formatted with the model's chat template, as JSONL.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var prompts = new Option<string>("--prompts") { Description = "prompts: JSON array or JSONL of strings, {prompt}, or {instruction, input}", Required = true };
        var system = CommandSupport.SystemPromptOption();
        var maxNew = new Option<int>("--max-new-tokens") { Description = "most tokens generated per prompt", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 (the default) decodes greedily; above 0 samples" };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling: keep the most likely tokens up to this probability mass (1: off)", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "sample among the k most likely tokens (default 0: off)" };
        var seed = new Option<int>("--seed") { Description = "sampling seed (default 0)" };
        var batchSize = CommandSupport.BatchSizeOption(8, "prompts");
        var output = new Option<string>("--output", "-o") { Description = "the responses, one JSON object per line", Required = true };
        var command = new Command("generate", "Generate answers to prompts with the model's chat template (greedy by default), written as JSONL")
        {
            model, adapter, prompts, system, maxNew, temperature, topP, topK, seed, batchSize, output,
        };
        command.SetAction(parseResult =>
        {
            string modelDir = parseResult.GetValue(model)!;
            var (weights, tokenizer) = CommandSupport.Load(modelDir, parseResult.GetValue(adapter));
            using var _ = weights;
            var users = PromptFile.Load(parseResult.GetValue(prompts)!);
            string? systemPrompt = SystemPrompt.Resolve(parseResult.GetValue(system));
            var options = new GenerationOptions
            {
                MaxNewTokens = parseResult.GetValue(maxNew),
                EosTokenIds = CommandSupport.EosIds(modelDir, weights.Config, tokenizer),
                Temperature = parseResult.GetValue(temperature),
                TopP = parseResult.GetValue(topP),
                TopK = parseResult.GetValue(topK),
                Seed = parseResult.GetValue(seed),
                BatchSize = parseResult.GetValue(batchSize),
            };
            if (options.MaxNewTokens < 0) throw new IrrException($"--max-new-tokens must not be negative, not {options.MaxNewTokens}");
            if (options.TopP is <= 0 or > 1) throw new IrrException($"--top-p must be in (0, 1], not {options.TopP}");
            var transformer = new Transformer(weights);
            IReadOnlyList<ChatResponse> outputs = [];
            CommandSupport.WithProgress(parseResult, "generating", (double)users.Count * options.MaxNewTokens, report =>
                outputs = ChatGeneration.Respond(transformer, tokenizer, users, systemPrompt, options, produced => report(produced, produced)));
            AtomicFile.WriteJsonLines(parseResult.GetValue(output)!, Enumerable.Range(0, users.Count), i => new JsonObject
            {
                ["index"] = i,
                ["prompt"] = users[i],
                ["response"] = outputs[i].Text,
                ["new_tokens"] = outputs[i].NewTokens,
                ["finish_reason"] = outputs[i].FinishReason,
            });
            parseResult.InvocationConfiguration.Error.WriteLine($"{users.Count} responses written to {parseResult.GetValue(output)}");
            return 0;
        });
        return command;
    }
}

/// <summary>
/// A prompt file: a JSON array or JSONL whose items are strings, <c>{"prompt": …}</c> (a string or an
/// object {instruction, input}), or Alpaca records <c>{instruction, input?}</c>; any answer field is ignored.
/// </summary>
internal static class PromptFile
{
    public static List<string> Load(string path)
    {
        if (!File.Exists(path)) throw new IrrException($"{path}: file not found");
        string text = File.ReadAllText(path);
        var items = new List<(JsonElement Item, string Where)>();
        try
        {
            if (text.TrimStart().StartsWith('['))
            {
                using var doc = JsonDocument.Parse(text);
                int i = 0;
                foreach (var e in doc.RootElement.EnumerateArray()) items.Add((e.Clone(), $"{path}: item {i++}"));
            }
            else
            {
                var lines = text.Split('\n');
                for (int i = 0; i < lines.Length; i++)
                {
                    if (string.IsNullOrWhiteSpace(lines[i])) continue;
                    using var doc = JsonDocument.Parse(lines[i]);
                    items.Add((doc.RootElement.Clone(), $"{path} line {i + 1}"));
                }
            }
        }
        catch (JsonException e)
        {
            throw new IrrException($"{path}: not valid JSON or JSONL: {e.Message}", e);
        }
        return items.Select(x => User(x.Item, x.Where)).ToList();
    }

    private static string User(JsonElement e, string where)
    {
        if (e.ValueKind == JsonValueKind.String) return e.GetString()!;
        if (e.ValueKind != JsonValueKind.Object) throw new IrrException($"{where}: expected a string or an object with \"prompt\" or \"instruction\"");
        if (e.TryGetProperty("prompt", out var p))
        {
            if (p.ValueKind == JsonValueKind.String) return p.GetString()!;
            if (p.ValueKind == JsonValueKind.Object && p.TryGetProperty("instruction", out var pi) && pi.ValueKind == JsonValueKind.String)
                return pi.GetString() + "\n" + (p.TryGetProperty("input", out var pin) && pin.ValueKind == JsonValueKind.String ? pin.GetString() : "") + "\n";
            throw new IrrException($"{where}: \"prompt\" must be a string or {{instruction, input}}");
        }
        if (e.TryGetProperty("instruction", out var instruction) && instruction.ValueKind == JsonValueKind.String)
        {
            string input = e.TryGetProperty("input", out var inp) && inp.ValueKind == JsonValueKind.String ? inp.GetString()! : "";
            return input.Length == 0 ? instruction.GetString()! : instruction.GetString() + "\n" + input;
        }
        throw new IrrException($"{where}: expected \"prompt\" or \"instruction\"");
    }
}
