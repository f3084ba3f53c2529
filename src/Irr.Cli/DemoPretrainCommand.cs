using System.CommandLine;
using System.Globalization;
using Irr.Demo;

namespace Irr.Cli;

/// <summary>
/// <c>irr demo pretrain</c>: trains the demo world's base model from scratch on its plain-text corpus (run once; the
/// result ships with irr, and <c>irr demo</c> starts from it).
/// </summary>
internal static class DemoPretrainCommand
{
    public static Command Create()
    {
        var defaults = new PretrainOptions();
        var output = new Option<string>("--output", "-o") { Description = "the base model directory to write", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        var seed = new Option<int>("--seed") { Description = "seed of the corpus, the initialisation and the data order", DefaultValueFactory = _ => defaults.Seed };
        var documents = new Option<int>("--documents") { Description = "corpus documents, each trained on once", DefaultValueFactory = _ => defaults.Documents };
        var hidden = new Option<int>("--hidden-size") { Description = "hidden_size", DefaultValueFactory = _ => defaults.HiddenSize };
        var intermediate = new Option<int>("--intermediate-size") { Description = "intermediate_size", DefaultValueFactory = _ => defaults.IntermediateSize };
        var layers = new Option<int>("--layers") { Description = "num_hidden_layers", DefaultValueFactory = _ => defaults.Layers };
        var heads = new Option<int>("--heads") { Description = "num_attention_heads", DefaultValueFactory = _ => defaults.Heads };
        var vocab = new Option<int>("--vocab-size") { Description = "tokenizer vocabulary", DefaultValueFactory = _ => defaults.VocabSize };
        var batch = new Option<int>("--batch-size") { Description = "documents per optimizer step", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "peak learning rate (cosine)", DefaultValueFactory = _ => defaults.LearningRate };
        PretrainJob Build(ParseResult r) => new()
        {
            Options = defaults with
            {
                Seed = r.GetValue(seed), Documents = r.GetValue(documents), HiddenSize = r.GetValue(hidden), IntermediateSize = r.GetValue(intermediate),
                Layers = r.GetValue(layers), Heads = r.GetValue(heads), VocabSize = r.GetValue(vocab), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr),
            },
            OutputPath = r.GetValue(output)!,
            Overwrite = r.GetValue(overwrite),
        };
        var command = new JobCommand("pretrain", "Pretrain the demo world's base model on its plain-text corpus (run once; irr demo ships and starts from the result)", Build)
        {
            output, overwrite, seed, documents, hidden, intermediate, layers, heads, vocab, batch, lr,
        };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job, oneBar: true);
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pretrained {result.Parameters:N0} parameters on {result.Tokens:N0} tokens in {result.Steps} steps (final loss {result.FinalLoss:F3}) in {result.Seconds / 60:F1} min: {job.OutputPath}"));
            return 0;
        });
        return command;
    }
}
