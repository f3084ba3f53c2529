using System.Text.Json;
using Irr;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>The Jinja2 subset, construct by construct, against results worked out from jinja2's documented behaviour.</summary>
public class JinjaTests
{
    private static string R(string template, string variablesJson = "{}")
    {
        using var doc = JsonDocument.Parse(variablesJson);
        var vars = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        return ChatTemplate.Parse(template).Render(vars);
    }

    private static string Fails(string template, string variablesJson = "{}") =>
        Assert.Throws<IrrException>(() => R(template, variablesJson)).Message;

    [Theory]
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
    [InlineData("{% if true %}\nA\n{% endif %}\nB", "A\nB")]
    [InlineData("  {% if true %}x{% endif %}", "x")]
    [InlineData("a  {% if true %}x{% endif %}", "a  x")]
    [InlineData("  {%+ if true %}x{% endif %}", "  x")]
    [InlineData("{% if true +%}\nx{% endif %}", "\nx")]
    // '-' strips all whitespace, newlines included.
    [InlineData("a  \n  {%- if true -%}  \n  b  {%- endif %}", "ab")]
    [InlineData("a {{- 'b' -}} c", "abc")]
    // Output tags are not trimmed by trim_blocks/lstrip_blocks.
    [InlineData("{{ 'a' }}\nb", "a\nb")]
    [InlineData("  {{ 'a' }}", "  a")]
    // Comments are trimmed like blocks.
    [InlineData("a{# c #}\nb", "ab")]
    [InlineData("  {# c #}\nb", "b")]
    [InlineData("a{#- c -#}  b", "ab")]
    // One trailing newline of the template is dropped (keep_trailing_newline=False); \r\n becomes \n.
    [InlineData("a\n", "a")]
    [InlineData("a\n\n", "a\n")]
    [InlineData("a\r\nb", "a\nb")]
    [InlineData("{% raw %}{{ x }}{% endraw %}", "{{ x }}")]
    public void WhitespaceControl(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ x }}", "")]
    [InlineData("{% if x %}y{% else %}n{% endif %}", "n")]
    [InlineData("{{ x is defined }}{{ x is undefined }}{{ x is none }}", "FalseTrueFalse")]
    [InlineData("{{ x|length }}{{ x|trim }}|{{ x|default('z') }}", "0|z")]
    [InlineData("{% for i in x %}a{% endfor %}", "")]
    [InlineData("{{ x == y }}{{ x ~ 'a' }}", "Truea")]
    [InlineData("{{ 'a' in x }}", "False")]
    [InlineData("{{ d.missing is defined }}{{ d['k'] }}", "Falsev")]
    [InlineData("{{ none|default('z') }}{{ ''|default('z', true) }}", "Nonez")]
    public void UndefinedBehavesLikeJinja2Default(string template, string expected) =>
        Assert.Equal(expected, R(template, """{"d": {"k": "v"}}"""));

    [Fact]
    public void UsingUndefinedInArithmeticFails() => Assert.Equal("chat template line 2: 'x' is undefined", Fails("a\n{{ x + 'a' }}"));

    [Fact]
    public void AttributeOfAMissingAttributeFails() =>
        Assert.Equal("chat template line 1: 'dict object' has no attribute 'missing'", Fails("{{ d.missing.foo }}", """{"d": {}}"""));

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ 2 ** 3 ** 2 }}", "64")] // jinja2's ** is left-associative
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}", "3 -4 1 2")]
    [InlineData("{{ 7 / 2 }} {{ 4 / 2 }}", "3.5 2.0")]
    [InlineData("{{ 0.1 + 0.2 }} {{ 1.5e3 }} {{ 1e20 * 10 }} {{ 1e-5 }}", "0.30000000000000004 1500.0 1e+21 1e-05")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue")]
    [InlineData("{{ [1, 2] + [3] }}", "[1, 2, 3]")]
    [InlineData("{{ {'a': 1, 'b': [true, none, 'x']} }}", "{'a': 1, 'b': [True, None, 'x']}")]
    [InlineData("{{ (1, 'a') }} {{ (1,) }}", "(1, 'a') (1,)")]
    [InlineData("{{ [\"it's\", 'a\\nb'] }}", "[\"it's\", 'a\\nb']")]
    [InlineData("{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ [1, 2, 3][-1] }}{{ [1, 2, 3][1:] }}", "elolleh3[2, 3]")]
    [InlineData("{{ 'a' if false }}|{{ 'a' if false else 'b' }}", "|b")]
    [InlineData("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", "True False")]
    [InlineData("{{ 'b' in 'abc' }} {{ 'x' not in ['x'] }} {{ 'k' in {'k': 1} }}", "True False True")]
    [InlineData("{{ not 1 == 2 }} {{ 1 == 1.0 }} {{ true == 1 }}", "True True True")]
    [InlineData("{{ 'ab' 'cd' }}", "abcd")]
    [InlineData("{{ '\\u00e9\\x41\\t' }}", "éA\t")]
    [InlineData("{{ '%s-%d' % ('a', 3) }}", "a-3")]
    [InlineData("{{ 'ab' * 2 }}", "abab")]
    public void Expressions(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}",
        "10TrueFalse33;21FalseFalse32;32FalseTrue31;")]
    [InlineData("{% for x in [] %}a{% else %}e{% endfor %}", "e")]
    [InlineData("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", "02")]
    [InlineData("{% for x in range(6) if x is odd %}{{ x }}{{ loop.last }}{% endfor %}", "1False3False5True")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}", "a=1,b=2,")]
    [InlineData("{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}", "ab")]
    [InlineData("{% for c in 'a😀' %}[{{ c }}]{% endfor %}", "[a][😀]")]
    [InlineData("{% for x in [1, 2] %}{% for y in 'ab' %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}", "121122")]
    [InlineData("{% for x in [1, 2, 3] %}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }},{% endfor %}", "2a,13b,2a,")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", "21")]
    [InlineData("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "2")]
    [InlineData("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}", "4")]
    [InlineData("{% set a, b = [1, 2] %}{{ b }}{{ a }}", "21")]
    [InlineData("{% set x %}a{{ 1 }}{% endset %}[{{ x }}]", "[a1]")]
    [InlineData("{% macro greet(name, p='Hi') %}{{ p }} {{ name }}{% endmacro %}{{ greet('A') }}/{{ greet('B', p='Yo') }}", "Hi A/Yo B")]
    [InlineData("{% if false %}a{% elif true %}b{% else %}c{% endif %}", "b")]
    [InlineData("{% generation %}x{% endgeneration %}", "x")]
    public void Statements(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ '  a b \\n'|trim }}|{{ 'xxaxx'|trim('x') }}", "a b|a")]
    [InlineData("{{ 'aBc'|upper }}{{ 'aBc'|lower }}{{ 'hELLO wORLD'|capitalize }}{{ 'hello world'|title }}", "ABCabcHello worldHello World")]
    [InlineData("{{ 'a😀'|length }}{{ [1, 2]|count }}{{ {'a': 1}|length }}", "221")]
    [InlineData("{{ [3, 1, 2]|sort|join(',') }}|{{ [1, 2, 1]|unique|list }}|{{ [1, 2]|reverse|list }}|{{ [1, 2]|first }}{{ [1, 2]|last }}", "1,2,3|[1, 2]|[2, 1]|12")]
    [InlineData("{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('+') }}", "a+c")]
    [InlineData("{{ ms|rejectattr('role', 'equalto', 'user')|list|length }}{{ ms|map(attribute='role')|select('equalto', 'user')|list|length }}", "12")]
    [InlineData("{{ 'a-b-c'|replace('-', '+') }}{{ 'a-b-c'|replace('-', '+', 1) }}", "a+b+ca+b-c")]
    [InlineData("{{ {'a': 1}|items|list }}{{ {'b': 1, 'a': 2}|dictsort }}", "[('a', 1)][('a', 2), ('b', 1)]")]
    [InlineData("{{ 3|string ~ ('1'|int + 1) }}{{ '2.5'|float }}{{ -3|abs }}{{ 2.567|round(1) }}", "322.532.6")]
    [InlineData("{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", "a\n  b|  a\n  b")]
    [InlineData("{{ [1, 5, 3]|max }}{{ [1, 5, 3]|min }}{{ [1, 5, 3]|sum }}", "519")]
    public void Filters(string template, string expected) =>
        Assert.Equal(expected, R(template, """{"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}"""));

    [Theory]
    // json.dumps separators: ", " and ": " on one line, "," and ": " with indent; ensure_ascii=False keeps é.
    [InlineData("{{ {'a': [1, 'é', none, true, 1.5]}|tojson }}", "{\"a\": [1, \"é\", null, true, 1.5]}")]
    [InlineData("{{ {'a': [1, 2], 'b': {}, 'c': []}|tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": []\n}")]
    [InlineData("{{ 'a\"b\\\\c\\n\\u0001\\u2028<>&\\''|tojson }}", "\"a\\\"b\\\\c\\n\\u0001\u2028<>&'\"")]
    [InlineData("{{ 'é😀'|tojson(ensure_ascii=true) }}", "\"\\u00e9\\ud83d\\ude00\"")]
    [InlineData("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}", "{\"a\": 2, \"b\": 1}")]
    [InlineData("{{ {'a': 1, 'b': 2}|tojson(separators=(',', ':')) }}", "{\"a\":1,\"b\":2}")]
    [InlineData("{{ t|tojson }}", "{\"n\": 10, \"f\": 2.5, \"big\": 1e+100}")]
    public void ToJsonIsPythonJsonDumps(string template, string expected) =>
        Assert.Equal(expected, R(template, """{"t": {"n": 10, "f": 2.5, "big": 1e100}}"""));

    [Theory]
    [InlineData("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na\\n'.lstrip('\\n') }}|{{ 'a\\n\\n'.rstrip() }}", "a b|a|a\n|a")]
    [InlineData("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a</think>b'.split('</think>')[-1] }}", "['a', 'b', '', 'c']['a', 'b']b")]
    [InlineData("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.upper() }}", "TrueTrueABC")]
    [InlineData("{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 2) }}{{ {'a': 1}.keys()|list }}{{ {'a': 1}.values()|list }}", "12['a'][1]")]
    [InlineData("{{ ', '.join(['a', 'b']) }}{{ 'a-b'.replace('-', '') }}{{ 'banana'.count('a') }}{{ 'abc'.find('c') }}", "a, bab32")]
    public void PythonMethods(string template, string expected) => Assert.Equal(expected, R(template));

    [Fact]
    public void RaiseExceptionGivesItsMessageAndLine()
    {
        var e = Assert.Throws<TemplateRaisedException>(() => R("\n\n{{ raise_exception('nope') }}"));
        Assert.Equal("nope", e.RaisedMessage);
        Assert.Equal("chat template line 3: the template raised an error: nope", e.Message);
    }

    [Theory]
    [InlineData("a\n{% include 'x' %}", "chat template line 2: unsupported tag 'include'")]
    [InlineData("a\nb\n{{ x|wordcount }}", "chat template line 3: unsupported filter 'wordcount'")]
    [InlineData("{% if x is prime %}{% endif %}", "chat template line 1: unsupported test 'prime'")]
    [InlineData("{% for x in y recursive %}{% endfor %}", "chat template line 1: unsupported loop modifier 'recursive'")]
    [InlineData("{% extends 'base' %}", "chat template line 1: unsupported tag 'extends'")]
    [InlineData("{% filter upper %}a{% endfilter %}", "chat template line 1: unsupported tag 'filter'")]
    [InlineData("{% frobnicate %}", "chat template line 1: unknown tag 'frobnicate'")]
    [InlineData("\n{% if x %}", "chat template line 2: 'if' is not closed ('{% endif %}' missing)")]
    [InlineData("{% for x in y %}\n{% endif %}", "chat template line 2: unexpected 'endif' inside 'for' (expected '{% endfor %}')")]
    [InlineData("{% endfor %}", "chat template line 1: unexpected 'endfor'")]
    [InlineData("{% break %}", "chat template line 1: 'break' outside of a loop")]
    [InlineData("{{ f(*args) }}", "chat template line 1: unsupported '*args'/'**kwargs' in a call")]
    [InlineData("{{ x", "chat template line 1: tag is not closed ('}}' missing)")]
    [InlineData("{{ 1 + }}", "chat template line 1: unexpected end of expression")]
    [InlineData("{{ 'abc }}", "chat template line 1: string literal is not closed")]
    [InlineData("{# never closed", "chat template line 1: comment is not closed ('#}' missing)")]
    public void ConstructsOutsideTheSubsetAreRejectedWithTheirLine(string template, string message) =>
        Assert.Equal(message, Assert.Throws<IrrException>(() => ChatTemplate.Parse(template)).Message);

    [Theory]
    [InlineData("{{ [1].append(2) }}", "chat template line 1: unsupported: list.append() changes the list, which the sandbox transformers renders in forbids")]
    [InlineData("{{ 1 + 'a' }}", "chat template line 1: unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{% for x in none %}{% endfor %}", "chat template line 1: 'NoneType' object is not iterable")]
    [InlineData("{{ x|tojson }}", "chat template line 1: Object of type Undefined is not JSON serializable ('x' is undefined)")]
    [InlineData("{{ undefined_function() }}", "chat template line 1: 'undefined_function' is undefined")]
    [InlineData("{% set n = 1 %}{% set n.x = 2 %}", "chat template line 1: cannot assign attribute on non-namespace object 'n'")]
    public void RuntimeErrorsNameTheLine(string template, string message) => Assert.Equal(message, Fails(template));
}

public class JinjaEdgeTests
{
    [Fact]
    public void SortingIncomparableValuesIsAnInputError()
    {
        var e = Assert.Throws<IrrException>(() => ChatTemplate.Parse("{{ [1, 'a']|sort }}").Render(new Dictionary<string, JsonElement>()));
        // Which pair the sort compares first is its own business; the message names the types.
        Assert.StartsWith("chat template line 1: '<' not supported between instances of '", e.Message);
    }

    [Fact]
    public void DictsortIsStableOnEqualValues() =>
        Assert.Equal("[('b', 1), ('a', 1), ('c', 0)]|[('c', 0), ('b', 1), ('a', 1)]",
            ChatTemplate.Parse("{{ {'b': 1, 'a': 1, 'c': 0}|dictsort(false, 'value', true) }}|{{ {'b': 1, 'a': 1, 'c': 0}|dictsort(false, 'value') }}")
                .Render(new Dictionary<string, JsonElement>()));
}

public class JinjaSortTests
{
    private static string R(string t) => ChatTemplate.Parse(t).Render(new Dictionary<string, JsonElement>());

    [Theory]
    // Python's sorted() is stable in both directions; jinja2 compares strings case-insensitively by default.
    [InlineData("{{ ['b', 'A', 'a', 'B']|sort }}", "['A', 'a', 'b', 'B']")]
    [InlineData("{{ ['b', 'A', 'a', 'B']|sort(case_sensitive=true) }}", "['A', 'B', 'a', 'b']")]
    [InlineData("{{ ['b', 'A', 'a', 'B']|sort(reverse=true) }}", "['b', 'B', 'A', 'a']")]
    [InlineData("{{ {'B': 1, 'a': 2}|dictsort }}", "[('a', 2), ('B', 1)]")]
    public void SortLikePython(string template, string expected) => Assert.Equal(expected, R(template));
}
