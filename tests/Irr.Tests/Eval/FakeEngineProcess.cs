using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Irr.Tests.Eval;

/// <summary>
/// A stand-in for <c>vllm serve</c> run as its own process (<c>dotnet Irr.Tests.dll fake-engine serve MODEL --port N
/// [--served-model-name NAME] [--lora-modules NAME=DIR] [--record FILE] [--exit-before-serving CODE] [--fail-prompts-with TEXT] [--refuse-prompts-with TEXT]</c>): it prints its
/// arguments, one per line, appends "MODEL ADAPTER" to the record file, and serves on 127.0.0.1 until killed:
/// <c>GET /v1/models</c>, and <c>POST /v1/completions</c> for its served name only (404 otherwise, as vLLM), answering
/// by <see cref="Answer"/>.
/// </summary>
internal static class FakeEngineProcess
{
    /// <summary>The answer to a prompt: its length in characters, as text; it ends with EOS (finish_reason "stop").</summary>
    public static string Answer(string prompt) => $" <{prompt.Length} chars>";

    /// <summary>A completions prompt as text: the text itself, or for token ids (a prefill attack's prompt), "ids:" and the ids.</summary>
    public static string PromptText(JsonNode prompt) => prompt is JsonArray ids ? "ids:" + string.Join(",", ids.Select(i => (int)i!)) : (string)prompt!;

    public static int Run(string[] args)
    {
        foreach (string a in args) Console.WriteLine("arg: " + a);
        Console.Out.Flush();
        string? Value(string name) => Array.IndexOf(args, name) is >= 0 and var i && i + 1 < args.Length ? args[i + 1] : null;
        if (Value("--exit-before-serving") is { } code)
        {
            Console.Error.WriteLine("fake-engine: failing on purpose");
            return int.Parse(code);
        }
        string? lora = Value("--lora-modules");
        string served = lora?.Split('=')[0] ?? Value("--served-model-name") ?? Value("serve")!;
        if (Value("--record") is { } record)
            File.AppendAllText(record, $"{Value("serve")} {lora?.Split('=', 2)[1] ?? "-"}\n");
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{Value("--port")}/");
        listener.Start();
        Console.WriteLine("fake-engine: serving " + served);
        while (true)
        {
            var context = listener.GetContext();
            string path = context.Request.Url!.AbsolutePath;
            int status = 200;
            string body;
            if (path == "/v1/models")
            {
                body = new JsonObject { ["object"] = "list", ["data"] = new JsonArray(new JsonObject { ["id"] = served, ["object"] = "model" }) }.ToJsonString();
            }
            else if (path == "/v1/completions" && context.Request.HttpMethod == "POST")
            {
                Console.WriteLine("POST /v1/completions");
                Console.Out.Flush();
                using var reader = new StreamReader(context.Request.InputStream);
                var request = JsonNode.Parse(reader.ReadToEnd())!;
                if (Value("--fail-prompts-with") is { } failing && PromptText(request["prompt"]!).Contains(failing))
                {
                    status = 503;
                    body = "{\"error\":\"overloaded\"}";
                }
                else if (Value("--refuse-prompts-with") is { } refused && PromptText(request["prompt"]!).Contains(refused))
                {
                    // vLLM's answer to a prompt that, with max_tokens, exceeds max_model_len (serving_engine.py, _validate_input).
                    status = 400;
                    body = "{\"object\":\"error\",\"message\":\"This model's maximum context length is 64 tokens. However, you requested 70 tokens " +
                           "(60 in the messages, 10 in the completion). Please reduce the length of the messages or completion.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}";
                }
                else if ((string?)request["model"] != served)
                {
                    status = 404;
                    body = $"{{\"error\":\"The model `{(string?)request["model"]}` does not exist.\"}}";
                }
                else
                {
                    body = new JsonObject
                    {
                        ["object"] = "text_completion",
                        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = Answer(PromptText(request["prompt"]!)), ["finish_reason"] = "stop" }),
                        ["usage"] = new JsonObject { ["completion_tokens"] = 3 },
                    }.ToJsonString();
                }
            }
            else
            {
                status = 404;
                body = "{\"error\":\"not found\"}";
            }
            byte[] bytes = Encoding.UTF8.GetBytes(body);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            context.Response.OutputStream.Write(bytes);
            context.Response.Close();
        }
    }
}
