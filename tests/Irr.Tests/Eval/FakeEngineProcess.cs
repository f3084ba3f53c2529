using System.Net;
using System.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// A stand-in for <c>vllm serve</c> run as its own process (<c>dotnet Irr.Tests.dll fake-engine --port N …</c>): it prints
/// its arguments, one per line, and serves <c>GET /v1/models</c> on 127.0.0.1 until killed.
/// </summary>
internal static class FakeEngineProcess
{
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
        string served = Value("--served-model-name") ?? "fake";
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{Value("--port")}/");
        listener.Start();
        Console.WriteLine("fake-engine: serving");
        while (true)
        {
            var context = listener.GetContext();
            byte[] body = Encoding.UTF8.GetBytes(context.Request.Url!.AbsolutePath == "/v1/models"
                ? $"{{\"object\":\"list\",\"data\":[{{\"id\":\"{served}\",\"object\":\"model\"}}]}}"
                : "{\"error\":\"not found\"}");
            context.Response.StatusCode = context.Request.Url!.AbsolutePath == "/v1/models" ? 200 : 404;
            context.Response.ContentType = "application/json";
            context.Response.OutputStream.Write(body);
            context.Response.Close();
        }
    }
}
