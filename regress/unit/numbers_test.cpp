// Numbers read as text are all number or refused: causalctl reads them from
// servers and command lines with these, never with std::stoll or std::stod.
#include <gtest/gtest.h>

#include <string>

#include "numbers.hpp"

namespace {

using causal::Error;
using causal::ErrorKind;
using causal::parse_decimal;
using causal::parse_integer;

ErrorKind kind_of(void (*f)()) {
    try {
        f();
    } catch (const Error& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no error";
    return ErrorKind::Internal;
}

TEST(Numbers, IntegersAsPostgresPrintsThem) {
    EXPECT_EQ(parse_integer("0"), 0);
    EXPECT_EQ(parse_integer("42"), 42);
    EXPECT_EQ(parse_integer("-7"), -7);
    EXPECT_EQ(parse_integer("9223372036854775807"), 9223372036854775807LL);
    EXPECT_EQ(parse_integer("-9223372036854775808"), -9223372036854775807LL - 1);
}

TEST(Numbers, IntegerTextThatIsNotAllNumberIsRefused) {
    for (const char* text : {"", "12abc", " 12", "12 ", "+12", "1.5", "1e3", "0x10", "-", "abc", "12\n"}) {
        EXPECT_THROW(parse_integer(text), Error) << '"' << text << '"';
    }
    EXPECT_EQ(kind_of([] { parse_integer("12abc"); }), ErrorKind::InvalidText);
    EXPECT_EQ(kind_of([] { parse_integer(""); }), ErrorKind::InvalidText);
}

TEST(Numbers, IntegersOutOfRangeAreRefused) {
    EXPECT_EQ(kind_of([] { parse_integer("9223372036854775808"); }), ErrorKind::OutOfRange);
    EXPECT_EQ(kind_of([] { parse_integer("-9223372036854775809"); }), ErrorKind::OutOfRange);
    EXPECT_EQ(kind_of([] { parse_integer("0", 1, 10); }), ErrorKind::OutOfRange);
    EXPECT_EQ(kind_of([] { parse_integer("11", 1, 10); }), ErrorKind::OutOfRange);
    EXPECT_EQ(parse_integer("10", 1, 10), 10);
    EXPECT_EQ(parse_integer("1", 1, 10), 1);
}

TEST(Numbers, TheMessageSaysWhatTheTextWas) {
    try {
        parse_integer("5x");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "\"5x\" is not an integer");
    }
    try {
        parse_integer("0", 1, 60);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "\"0\" is out of range (1 to 60)");
    }
}

TEST(Numbers, DecimalsAsPostgresPrintsThem) {
    EXPECT_DOUBLE_EQ(parse_decimal("1.5"), 1.5);
    EXPECT_DOUBLE_EQ(parse_decimal("-0.25"), -0.25);
    EXPECT_DOUBLE_EQ(parse_decimal("1e-05"), 1e-05);
    EXPECT_DOUBLE_EQ(parse_decimal("1700000000123.456"), 1700000000123.456);
    EXPECT_DOUBLE_EQ(parse_decimal("3"), 3.0);
    EXPECT_DOUBLE_EQ(parse_decimal("0.5", 0, 10), 0.5);
}

TEST(Numbers, DecimalTextThatIsNotAFiniteNumberIsRefused) {
    for (const char* text : {"", "NaN", "nan", "Infinity", "-Infinity", "inf", "1.5s", " 1", "1 ", "+1", "0x1p3", "."}) {
        EXPECT_THROW(parse_decimal(text), Error) << '"' << text << '"';
    }
    EXPECT_EQ(kind_of([] { parse_decimal("NaN"); }), ErrorKind::InvalidText);
    EXPECT_EQ(kind_of([] { parse_decimal("1e999"); }), ErrorKind::OutOfRange);
    EXPECT_EQ(kind_of([] { parse_decimal("-1", 0, 10); }), ErrorKind::OutOfRange);
    EXPECT_EQ(kind_of([] { parse_decimal("10.5", 0, 10); }), ErrorKind::OutOfRange);
}

}  // namespace
