using System.Text.Json.Nodes;
using Irr.Tests.IO;
using Irr.Tests.Model;
using Irr.Tests.Text;

namespace Irr.Tests.Cli;

/// <summary>
/// A real trained model without a chat template: llama2.c's stories260K (../shared/realmodel, see its README), converted
/// here to a Hugging Face directory by the test's own reader of the llama2.c layout (<see cref="Llama2cModel"/>), and run
/// through <c>irr generate --no-chat-template --output-ids</c> and <c>irr score --no-chat-template</c>. The references are
/// independent of irr: llama2.c's encode (run.c's merge loop on tok512.bin's scores), a float64 forward in llama2.c's own
/// layout with its interleaved RoPE, run.c's decode, and the greedy story llama2.c documents for this model.
/// </summary>
public class RealModelTests
{
    private const string Bin = "../realmodel/stories260K.bin";

    private const string Llama2cStory =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. " +
        "She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. " +
        "She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. " +
        "I didn't know what to do.\"\nLily didn't want to help her mom, so she";

    private static (Llama2cModel Model, Llama2cTokenizer Tokenizer) Load()
    {
        var model = Llama2cModel.Read(Fixtures.Shared(Bin));
        return (model, Llama2cTokenizer.Read(Fixtures.Shared("../realmodel/tok512.bin"), model.Vocab));
    }

    [SharedFixtureFact(Bin)]
    public void GreedyGenerationWithoutAChatTemplateMatchesLlama2cTokenForToken()
    {
        var (model, tokenizer) = Load();
        Assert.Equal((64, 172, 5, 8, 4, 512, 512, true), (model.Dim, model.Hidden, model.Layers, model.Heads, model.KvHeads, model.Vocab, model.SeqLen, model.Shared));
        using var tmp = new TempDir();
        string dir = tmp["stories260K-hf"];
        model.WriteHuggingFace(dir, tokenizer);
        string[] prompts = ["", "Once upon a time", "Lily and Tom", "The dog said \"hello\" to the cat."];
        File.WriteAllText(tmp["prompts.json"], new JsonArray([.. prompts.Select(p => (JsonNode)p)]).ToJsonString());
        const int steps = 200; // llama2.c test_all.py: -n 200 from BOS

        var (code, _, err) = CliRunner.Run("generate", "--model", dir, "--prompts", tmp["prompts.json"], "--no-chat-template", "--output-ids",
            "--max-new-tokens", $"{steps}", "--output", tmp["out.jsonl"]);
        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(tmp["out.jsonl"]).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(prompts.Length, lines.Count);
        for (int p = 0; p < prompts.Length; p++)
        {
            var line = lines[p];
            Assert.Equal(prompts[p], (string)line["prompt"]!);
            var promptIds = line["prompt_token_ids"]!.AsArray().Select(n => (int)n!).ToList();
            var ids = line["token_ids"]!.AsArray().Select(n => (int)n!).ToList();
            // The prompt as llama2.c encodes it: BOS, then the pieces (BOS alone for the empty prompt).
            Assert.Equal(tokenizer.Encode(prompts[p]), promptIds);

            var (expected, gaps) = model.Greedy(promptIds, steps);
            int compared = 0;
            for (; compared < Math.Min(expected.Count, ids.Count); compared++)
            {
                if (ids[compared] != expected[compared])
                {
                    // float32 against float64 may only part at a near tie of the two best logits.
                    Assert.True(gaps[compared] < 1e-4, $"prompt {p}: token {compared} is {ids[compared]}, llama2.c's is {expected[compared]} (logit gap {gaps[compared]})");
                    break;
                }
            }
            Assert.True(compared >= 100 || compared == expected.Count, $"prompt {p}: only {compared} tokens compared");

            // The response is what run.c prints after the prompt: its pieces, a leading space kept (" was", not "was"), up
            // to where run.c stops (BOS, which starts the next story; irr goes on to EOS or the limit, as transformers does).
            int previous = promptIds[^1];
            var text = new System.Text.StringBuilder();
            foreach (int id in ids.TakeWhile(id => id is not (1 or 2))) { text.Append(tokenizer.Piece(previous, id)); previous = id; }
            Assert.StartsWith(text.ToString(), (string)line["response"]!);
            Assert.True(text.Length > 100, $"prompt {p}: only {text.Length} characters compared");
        }
        // llama2.c's test_all.py: stories260K with tok512 at temperature 0, 200 steps from BOS, prints exactly this.
        Assert.Equal(Llama2cStory, (string)lines[0]["response"]!);
        Assert.StartsWith(" ", (string)lines[2]["response"]!);
    }

    [SharedFixtureFact(Bin)]
    public void ADirectoryWithTokenizerModelAndNoTokenizerJsonGeneratesAsLlama2c()
    {
        // What LlamaTokenizer(vocab_file="tok512.model").save_pretrained(dir) leaves: tokenizer.model and tokenizer_config.json.
        var (model, tokenizer) = Load();
        using var tmp = new TempDir();
        string dir = tmp["hf"];
        model.WriteHuggingFace(dir, tokenizer);
        File.Delete(Path.Combine(dir, "tokenizer.json"));
        File.Copy(Fixtures.Shared("../realmodel/tok512.model"), Path.Combine(dir, "tokenizer.model"));
        string[] prompts = ["", "Lily and Ben"];
        File.WriteAllText(tmp["prompts.json"], new JsonArray([.. prompts.Select(p => (JsonNode)p)]).ToJsonString());
        var (code, _, err) = CliRunner.Run("generate", "--model", dir, "--prompts", tmp["prompts.json"], "--no-chat-template", "--output-ids",
            "--max-new-tokens", "60", "--output", tmp["out.jsonl"]);
        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(tmp["out.jsonl"]).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        for (int p = 0; p < prompts.Length; p++)
        {
            var promptIds = lines[p]["prompt_token_ids"]!.AsArray().Select(n => (int)n!).ToList();
            Assert.Equal(tokenizer.Encode(prompts[p]), promptIds);
            var ids = lines[p]["token_ids"]!.AsArray().Select(n => (int)n!).ToList();
            Assert.Equal(model.Greedy(promptIds, 60).Ids, ids);
        }
        Assert.StartsWith(Llama2cStory[..100], (string)lines[0]["response"]!);
        Assert.StartsWith(" were playing in the park.", (string)lines[1]["response"]!);
    }

    [SharedFixtureFact(Bin)]
    public void ScoringRawTextIsPromptPlusAnswerWithLlama2csLogProbs()
    {
        var (model, tokenizer) = Load();
        using var tmp = new TempDir();
        string dir = tmp["hf"];
        model.WriteHuggingFace(dir, tokenizer);
        File.WriteAllText(tmp["data.jsonl"], """
            {"prompt": "Once upon a time, there was a", "response": " little girl named Lily."}
            {"prompt": "Tom had a red ball", "response": ". He liked to play with it every day."}
            """);
        var (code, _, err) = CliRunner.Run("score", "--model", dir, "--data", tmp["data.jsonl"], "--no-chat-template", "--output", tmp["scores.json"]);
        Assert.True(code == 0, err);
        var scores = JsonNode.Parse(File.ReadAllText(tmp["scores.json"]))!["scores"]!.AsArray();
        (string Prompt, string Answer)[] records = [("Once upon a time, there was a", " little girl named Lily."), ("Tom had a red ball", ". He liked to play with it every day.")];
        for (int r = 0; r < records.Length; r++)
        {
            var ids = scores[r]!["input_ids"]!.AsArray().Select(n => (int)n!).ToList();
            var labels = scores[r]!["labels"]!.AsArray().Select(n => (int)n!).ToList();
            // prompt + answer as one text (TRL's prompt-completion), BOS first, EOS (2) last; labels from the answer on.
            var whole = tokenizer.Encode(records[r].Prompt + records[r].Answer);
            Assert.Equal([.. whole, 2], ids);
            int start = tokenizer.Encode(records[r].Prompt).Count;
            Assert.Equal([.. Enumerable.Repeat(-100, start), .. ids.Skip(start)], labels);
            var reference = model.LogProbs(ids);
            var got = scores[r]!["token_logprobs"]!.AsArray().Select(n => (double)n!).ToList();
            Assert.Equal(ids.Count - start, got.Count);
            for (int i = 0; i < got.Count; i++) Assert.Equal(reference[start - 1 + i], got[i], 1e-3);
        }
    }

    [SharedFixtureFact(Bin)]
    public void WithoutTheFlagAModelWithoutAChatTemplateIsRefusedWithTheWayOut()
    {
        var (model, tokenizer) = Load();
        using var tmp = new TempDir();
        model.WriteHuggingFace(tmp["hf"], tokenizer);
        File.WriteAllText(tmp["prompts.json"], """["Once upon a time"]""");
        var (code, _, err) = CliRunner.Run("generate", "--model", tmp["hf"], "--prompts", tmp["prompts.json"], "--output", tmp["out.jsonl"]);
        Assert.Equal(2, code);
        Assert.Contains("--no-chat-template", err);
        Assert.False(File.Exists(tmp["out.jsonl"]));
    }
}
