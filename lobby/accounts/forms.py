"""Sign-up and guest-claim forms. Names are what the game shows: 3-24 letters, digits, _ or -."""

from __future__ import annotations

import copy

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import RegexValidator

USERNAME_RE = r"^[A-Za-z0-9_-]{3,24}$"
username_validator = RegexValidator(USERNAME_RE, "3 to 24 letters, digits, _ or -.")


def check_username(name: str) -> str:
    if name.lower().startswith("guest-"):
        raise forms.ValidationError("Names starting with 'guest-' are reserved.")
    if get_user_model().objects.filter(username__iexact=name).exists():
        raise forms.ValidationError("That name is taken.")
    return name


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].validators = [username_validator]
        self.fields["username"].max_length = 24
        self.fields["username"].help_text = "3 to 24 letters, digits, _ or -."

    def clean_username(self) -> str:
        return check_username(self.cleaned_data["username"])


class ClaimForm(forms.Form):
    """Turns the signed-in guest into a regular account: same user row, same rating."""

    username = forms.CharField(max_length=24, validators=[username_validator],
                               help_text="3 to 24 letters, digits, _ or -.")
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def __init__(self, user, *args, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        return check_username(self.cleaned_data["username"])

    def clean(self) -> dict:
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1 and "username" in data:
            candidate = copy.copy(self.user)  # validators compare with the new name
            candidate.username = data["username"]
            try:
                password_validation.validate_password(p1, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data

    def save(self):
        self.user.username = self.cleaned_data["username"]
        self.user.set_password(self.cleaned_data["password1"])
        self.user.save(update_fields=["username", "password"])
        self.user.profile.guest = False
        self.user.profile.save(update_fields=["guest"])
        return self.user
