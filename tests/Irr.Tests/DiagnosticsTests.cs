namespace Irr.Tests;

/// <summary>
/// <see cref="Diagnostics.Escape"/> against hand-written expectations: what a terminal would act on (line ends, ESC, BEL,
/// NUL, C1 controls, line/paragraph separators, bidirectional overrides, lone surrogates) becomes visible text, the rest
/// (any script, emoji, backslashes) stays as it is.
/// </summary>
public class DiagnosticsEscapeTests
{
    [Theory]
    [InlineData("model.layers.0.weight", "model.layers.0.weight")]
    [InlineData("a\nerror: forged", "a\\nerror: forged")]
    [InlineData("a\r\nb\tc", "a\\r\\nb\\tc")]
    [InlineData("\u001b[31mred\u001b[0m", "\\x1b[31mred\\x1b[0m")]
    [InlineData("bell\u0007nul\u0000del\u007f", "bell\\x07nul\\x00del\\x7f")]
    [InlineData("c1\u0085csi\u009b", "c1\\x85csi\\x9b")]
    [InlineData("ls\u2028ps\u2029", "ls\\u2028ps\\u2029")]
    [InlineData("rlo\u202eabc\u202c lri\u2066x\u2069 rlm\u200f alm\u061c", "rlo\\u202eabc\\u202c lri\\u2066x\\u2069 rlm\\u200f alm\\u061c")]
    [InlineData("中文 ▁the Ġt 😀 C:\\path\\n", "中文 ▁the Ġt 😀 C:\\path\\n")]
    [InlineData("", "")]
    public void EscapesWhatATerminalActsOn(string text, string expected) => Assert.Equal(expected, Diagnostics.Escape(text));

    [Fact]
    public void LoneSurrogatesAreEscapedAndPairsKept()
    {
        // built in code: xUnit's display of theory data would mangle a lone surrogate
        Assert.Equal("lone\\ud800high", Diagnostics.Escape("lone" + '\ud800' + "high"));
        Assert.Equal("lone\\udc00low", Diagnostics.Escape("lone" + '\udc00' + "low"));
        Assert.Equal("end\\ud83d", Diagnostics.Escape("end" + '\ud83d'));
        Assert.Equal("\\udc00\\ud800", Diagnostics.Escape(new string(['\udc00', '\ud800'])));
        Assert.Equal("pair 😀 then \\ud83d!", Diagnostics.Escape("pair 😀 then " + '\ud83d' + "!"));
    }

    [Fact]
    public void TextWithoutSuchCharactersIsTheSameInstance()
    {
        string text = "tokenizer.json: model.vocab.a: expected an integer";
        Assert.Same(text, Diagnostics.Escape(text));
        Assert.Equal("", Diagnostics.Escape(null));
    }

    [Fact]
    public void EveryC0AndC1ControlIsEscapedToPrintableAscii()
    {
        for (int c = 0; c <= 0x9f; c++)
        {
            if (c is >= 0x20 and < 0x7f) continue;
            string escaped = Diagnostics.Escape(((char)c).ToString());
            Assert.StartsWith("\\", escaped);
            Assert.All(escaped, ch => Assert.InRange(ch, ' ', '~'));
        }
    }
}
