using System.CommandLine;
using System.Text.Json;
using Irr.Model;
using Irr.Text;
using Irr.IO;
using Irr.Data;

namespace Irr.Cli;

/// <summary>
/// <c>irr score</c>: the log-probability the model gives every labelled (answer) token of a data set,
/// formatted as the model was trained, and the mean loss.
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var adapter = CommandSupport.AdapterOption();
        var data = new Option<string>("--data") { Description = $"records: {CommandSupport.RecordFormats}", Required = true };
        var system = CommandSupport.SystemPromptOption();
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var batchSize = CommandSupport.BatchSizeOption(8, "records");
        var output = new Option<string?>("--output", "-o") { Description = "write the JSON here (default: standard output)" };
        var command = new Command("score", "Score a data set: each record's token ids, labels and the log-probability of every answer token, and the mean loss")
        {
            model, adapter, data, system, maxLength, batchSize, output,
        };
        command.SetAction(parseResult =>
        {
            var (weights, tokenizer) = CommandSupport.Load(parseResult.GetValue(model)!, parseResult.GetValue(adapter));
            using var _ = weights;
            var records = TrainingRecord.Load(parseResult.GetValue(data)!);
            var examples = CommandSupport.Encode(tokenizer, records, SystemPrompt.Resolve(parseResult.GetValue(system)), parseResult.GetValue(maxLength));
            var transformer = new Transformer(weights);
            List<float>[] logProbs = [];
            CommandSupport.WithProgress(parseResult, "scoring", examples.Count, report =>
                logProbs = Scoring.TargetLogProbs(transformer, examples.Select(e => (e.InputIds, e.Labels)).ToList(), parseResult.GetValue(batchSize), (n, t) => report(n, t)));
            int labelled = logProbs.Sum(l => l.Count);
            double meanLoss = labelled == 0 ? double.NaN : -logProbs.Sum(l => l.Sum(x => (double)x)) / labelled;
            void Write(TextWriter w)
            {
                using var buffer = new MemoryStream();
                using var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                json.WriteStartObject();
                json.WriteString("model", parseResult.GetValue(model));
                json.WriteString("adapter", parseResult.GetValue(adapter));
                json.WriteString("data", parseResult.GetValue(data));
                json.WriteNumber("records", examples.Count);
                json.WriteNumber("labelled_tokens", labelled);
                if (double.IsNaN(meanLoss)) json.WriteNull("mean_loss"); else json.WriteNumber("mean_loss", meanLoss);
                json.WriteStartArray("scores");
                for (int i = 0; i < examples.Count; i++)
                {
                    json.WriteStartObject();
                    json.WriteNumber("index", i);
                    WriteInts(json, "input_ids", examples[i].InputIds);
                    WriteInts(json, "labels", examples[i].Labels);
                    json.WriteStartArray("token_logprobs");
                    foreach (float x in logProbs[i]) json.WriteNumberValue(x);
                    json.WriteEndArray();
                    if (logProbs[i].Count == 0) json.WriteNull("loss"); else json.WriteNumber("loss", -logProbs[i].Average(x => (double)x));
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
                json.Flush();
                w.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
            }
            if (parseResult.GetValue(output) is { } path) Irr.IO.AtomicFile.WriteText(path, Write);
            else Write(parseResult.InvocationConfiguration.Output);
            parseResult.InvocationConfiguration.Error.WriteLine($"{examples.Count} records, {labelled} labelled tokens, mean loss {meanLoss:F4}");
            return 0;
        });
        return command;
    }

    private static void WriteInts(Utf8JsonWriter json, string name, int[] values)
    {
        json.WriteStartArray(name);
        foreach (int v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }
}
